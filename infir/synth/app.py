"""What ``python -m infir.synth`` does: seeds -> the recipe's stages (curation runner) -> SFT file + report.

The stages run through the curation runner (``infir.data.curation.pipeline.curate``): every stage's shards and
statistics are written under ``<cache>/synth/curation/<key>/``, a killed run resumes at the first unfinished
shard, and the key covers the recipe, the seeds, the generator's identity and this package's code. Replies
are also kept in the reply cache, so a recipe that changes only later stages (selection) asks nothing again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from infir.atomic_files import atomic_write_bytes
from infir.data.curation.pipeline import curate
from infir.data.documents import Document
from infir.synth import output

log = logging.getLogger(__name__)


# What a recipe (conf/synth/*.yaml) may set; the stages' own keys are checked by their constructors.
SYNTH_KEYS = frozenset({"name", "variant", "output_dir", "reply_cache", "docs_per_shard", "write_excluded", "progress",
                        "seeds", "suffixes", "stages", "generator", "reward_model"})


@functools.cache
def synth_code_fingerprint() -> str:
    """Hash of this package's code: a changed rule must not reuse stale stage outputs."""
    package = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + path.read_bytes())
    return h.hexdigest()[:16]


def check_synth_keys(spec: dict[str, Any]) -> None:
    """A recipe's top-level keys are known and each stage is a ``_target_`` node or null (nothing imported)."""
    unknown = sorted(set(spec) - SYNTH_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {['synth.' + k for k in unknown]}; the synth keys are {sorted(SYNTH_KEYS)}")
    for name, node in (spec.get("stages") or {}).items():
        if node is not None and (not isinstance(node, dict) or "_target_" not in node):
            raise ValueError(f"synth.stages.{name}: a stage is a node with a _target_ (or null to leave it out)")


def build_synth_stages(synth_cfg: DictConfig) -> tuple[list[Any], dict[str, Any]]:
    """The recipe's stages in config order (a stage set to null is left out) and the plain spec for the cache key.

    A stage's ``generator`` node is handed over as a plain spec, not instantiated: the stages share one backend
    per process (``infir.synth.backends.build``), built on first use.
    """
    from hydra.utils import instantiate

    from hydra.errors import InstantiationException

    spec = OmegaConf.to_container(synth_cfg, resolve=True)
    check_synth_keys(spec)
    stages = []
    for name, node in (spec.get("stages") or {}).items():
        if node is None:
            continue
        node = dict(node)
        generator = node.pop("generator", None)
        try:
            factory = instantiate(node, _partial_=True, _convert_="all")
            stages.append(factory(name=name, **({"generator": generator} if generator is not None else {})))
        except (InstantiationException, TypeError) as error:  # a misspelt key, an unimportable _target_
            raise ValueError(f"synth.stages.{name}: {' '.join(str(error).split())}") from None
    if not stages:
        raise ValueError("synth.stages: the recipe has no stage")
    return stages, spec


@dataclass
class SynthResult:
    sft_file: Path
    validation_file: Path
    report: Path
    work_dir: Path
    samples: list[Document]
    funnel: list[dict[str, Any]]


def write_validation_file(seed_sources: dict[str, Any], path: Path, cache_dir: Path) -> None:
    """The embedded sources' validation conversations (not synthetic), what every recipe's SFT run is compared
    on; built once per source settings (the stdlib scan takes seconds) and copied from the cache after."""
    from infir.data.cache import content_key

    drop = {"max_seeds", "require_tests"}
    sources = {name: {k: v for k, v in (params or {}).items() if k not in drop}
               for name, params in seed_sources.items() if params is not None}
    cached = cache_dir / "validation" / f"{content_key(sources)}.jsonl"
    if not cached.is_file():
        from infir.data.sources.sft_embedded import BUILDER_OF_MIX_SOURCE, sft_conversations

        records = sft_conversations("validation", {BUILDER_OF_MIX_SOURCE[n]: p for n, p in sources.items()})
        cached.parent.mkdir(parents=True, exist_ok=True)
        output.write_jsonl(({**r, "split": "validation"} for r in records), cached)
    atomic_write_bytes(path, cached.read_bytes())


def _generator_identity(spec: dict[str, Any]) -> dict[str, Any]:
    from infir.synth.backends.build import build_backend

    backend = build_backend(spec["generator"], spec.get("reply_cache"))  # the instance the stages share
    inner = getattr(backend, "backend", backend)  # the model behind the reply cache
    return {"backend": type(inner).__name__, "fingerprint": backend.fingerprint()}


def run_synth(cfg: DictConfig) -> SynthResult:
    """Run ``cfg.synth`` end to end; returns where everything went."""
    from hydra.utils import instantiate

    start = time.perf_counter()
    synth = cfg.synth
    seeds = instantiate(synth.seeds, _convert_="all")
    stages, spec = build_synth_stages(synth)
    generator = _generator_identity(spec)  # a missing model fails here, before any stage runs
    recipe = {"synth": {k: v for k, v in spec.items() if k not in ("output_dir", "reply_cache")},
              "generator": generator, "code": synth_code_fingerprint()}
    result = curate(stages, recipe, Path(cfg.paths.cache_dir) / "synth", documents=seeds.documents(),
                    documents_fingerprint=seeds.fingerprint(), workers=1, docs_per_shard=int(synth.docs_per_shard),
                    write_excluded=bool(synth.get("write_excluded", False)), progress=bool(synth.get("progress", True)))
    samples = result.documents()
    out_dir = Path(synth.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sft_file = out_dir / output.SFT_FILE
    output.write_jsonl((output.sft_record(doc) for doc in samples), sft_file)
    validation_file = out_dir / output.VALIDATION_FILE
    write_validation_file(spec["seeds"]["sources"], validation_file, Path(cfg.paths.cache_dir) / "synth")
    report = output.write_report(out_dir, str(synth.name), result.funnel, samples, result.work_dir, generator,
                                 time.perf_counter() - start)
    return SynthResult(sft_file, validation_file, report, result.work_dir, samples, result.funnel)
