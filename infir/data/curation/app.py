"""What ``python -m infir.data`` does, and the recipe plumbing ``train.py`` shares."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from infir.data.curation.pipeline import CuratedSource, curate
from infir.data.curation.runner import Stage, format_funnel
from infir.data.doc_io import InputError, InputSpec
from infir.data.execution import ExecutorSpec
from infir.data.sources.select import DocumentCap

log = logging.getLogger(__name__)


def build_stages(curation_cfg: DictConfig) -> tuple[list[Stage], dict[str, Any]]:
    """Instantiate the recipe's stages (in config order) and return its plain spec for cache keys."""
    spec = OmegaConf.to_container(curation_cfg, resolve=True)
    stages = [instantiate(node, name=name, _convert_="all") for name, node in (curation_cfg.stages or {}).items()]
    return stages, spec


def curated_sources(cfg: DictConfig) -> dict[str, Any]:
    """The mix's sources (capped per split when ``data_mix.max_documents_per_split`` says so), with those
    named in ``data_mix.curate`` wrapped in the curation recipe."""
    sources = {name: instantiate(node) for name, node in cfg.data_mix.sources.items()
               if node is not None}  # data_mix.sources.<name>=null removes a source
    cap = cfg.data_mix.get("max_documents_per_split")
    if cap is not None:  # before curation: a capped run curates only what it trains on
        sources = {name: DocumentCap(source, cap) for name, source in sources.items()}
    names = list(cfg.data_mix.get("curate") or [])
    unknown = sorted(set(names) - set(sources))
    if unknown:
        raise ValueError(f"data_mix.curate names unknown sources {unknown} (sources: {sorted(sources)})")
    if not names:
        return sources
    stages, spec = build_stages(cfg.curation)
    for name in names:
        sources[name] = CuratedSource(sources[name], stages, spec, cfg.paths.cache_dir,
                                      **execution_options(cfg.curation))
    return sources


def execution_options(curation_cfg: DictConfig) -> dict[str, Any]:
    """How the recipe runs (executor, workers, shard size, fusion): ``curate``'s keyword arguments."""
    return {"workers": ExecutorSpec.from_config(curation_cfg), "docs_per_shard": int(curation_cfg.docs_per_shard),
            "fuse": bool(curation_cfg.get("fuse_map_stages", True))}


def run_curation_app(cfg: DictConfig) -> None:
    """Curate and print the funnel; unusable inputs and failed writes end the command with one line naming them."""
    try:
        _run_curation_app(cfg)
    except (InputError, OSError) as err:
        raise SystemExit(f"[infir] curation failed: {err}") from err


def _run_curation_app(cfg: DictConfig) -> None:
    if cfg.get("inputs"):
        stages, spec = build_stages(cfg.curation)
        nodes = OmegaConf.to_container(cfg.inputs, resolve=True) if OmegaConf.is_config(cfg.inputs) else cfg.inputs
        nodes = nodes if isinstance(nodes, list) else [nodes]  # inputs=crawl.jsonl: one bare path
        inputs = [InputSpec.from_config(node, f"inputs[{i}]") for i, node in enumerate(nodes)]
        results = {"inputs": curate(stages, spec, cfg.paths.cache_dir, inputs=inputs,
                                    write_excluded=bool(cfg.write_excluded), **execution_options(cfg.curation))}
    elif cfg.curation.get("source") is not None:  # a recipe with its own records (image-text pairs)
        stages, spec = build_stages(cfg.curation)
        source = instantiate(cfg.curation.source, _convert_="all")
        results = {source.name: curate(stages, spec, cfg.paths.cache_dir, documents=source.documents(),
                                       documents_fingerprint=source.fingerprint(),
                                       write_excluded=bool(cfg.write_excluded), **execution_options(cfg.curation))}
    else:
        curated = {name: s for name, s in curated_sources(cfg).items() if isinstance(s, CuratedSource)}
        if not curated:
            raise ValueError(f"data_mix={cfg.data_mix.name} curates no source (data_mix.curate is empty); "
                             "pick a mix with curated sources or pass inputs=[...]")
        results = {name: s.run(write_excluded=bool(cfg.write_excluded), progress=True)[0]
                   for name, s in curated.items()}
    for name, result in results.items():
        print(f"\n[infir] curation recipe '{cfg.curation.name}' over {name}: {len(result.output_shards)} shards in "
              f"{Path(result.work_dir)}\n{format_funnel(result.funnel)}", flush=True)
