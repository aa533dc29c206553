"""The evaluation app behind ``python -m infir.eval``: load the model, run the suite, write results.

Set-up (paths, config, records, sandbox, model) is :func:`prepare_eval`; everything it rejects is a user error,
reported by ``__main__`` in one line before any evaluation work.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from infir.env import configure_offline_defaults
from infir.eval.loading import check_dtype, check_model_path, load_model
from infir.eval.nll import domain_nll, heldout_documents
from infir.eval.suite import EvalSuite, write_results

log = logging.getLogger(__name__)


@dataclass
class PreparedEval:
    """A validated evaluation: the suite built, the model loaded, nothing evaluated yet."""

    cfg: DictConfig
    eval_cfg: dict[str, Any]
    suite: EvalSuite
    model: torch.nn.Module
    tokenizer: Any
    processor: Any = None  # the image processor of a vision-language model


def prepare_eval(cfg: DictConfig) -> PreparedEval:
    """Check the cheap things first (model path, dtype, task names and keys), then build the suite, then load."""
    configure_offline_defaults()
    check_model_path(cfg.model_path)
    check_dtype(str(cfg.dtype))
    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg.torch_threads))
    eval_cfg = OmegaConf.to_container(cfg.eval, resolve=True)
    if not eval_cfg.get("allow_code_execution"):
        log.warning("code tasks (HumanEval, MBPP) are skipped: set eval.allow_code_execution=true to run "
                    "model-written code in the sandbox")
    if eval_cfg.get("kind") == "vl":  # a vision-language export, scored by the multimodal suite
        from infir.eval.vl.suite import VLEvalSuite
        from infir.models.vlm.build import is_vlm_export, load_vlm

        if not is_vlm_export(cfg.model_path):
            raise ValueError(f"eval={eval_cfg['name']} scores vision-language exports; {cfg.model_path} is not one")
        suite = VLEvalSuite(eval_cfg)
        model, processor, tokenizer = load_vlm(cfg.model_path)
        return PreparedEval(cfg, eval_cfg, suite, model.eval(), tokenizer, processor)
    suite = EvalSuite(eval_cfg)  # records and sandbox checks fail before the model loads
    model, tokenizer = load_model(cfg.model_path, device=str(cfg.device), dtype=str(cfg.dtype))
    return PreparedEval(cfg, eval_cfg, suite, model, tokenizer)


def run_prepared(prepared: PreparedEval) -> dict:
    """Evaluate and write ``results.json``; returns the summary written to disk."""
    cfg, eval_cfg, model, tokenizer = prepared.cfg, prepared.eval_cfg, prepared.model, prepared.tokenizer
    if prepared.processor is not None:
        results = prepared.suite.run(model, tokenizer, Path(cfg.out_dir) / "samples", processor=prepared.processor)
        Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
        summary = {"model": str(cfg.model_path), "suite": eval_cfg["name"],
                   "tasks": {name: {"metrics": r.metrics, "seconds": r.seconds} for name, r in results.items()}}
        path = Path(cfg.out_dir) / "results.json"
        path.write_text(json.dumps(summary, indent=2))
        print(f"[infir] eval results: {path}")
        for task, entry in summary["tasks"].items():
            print(f"[infir]   {task}: " + ", ".join(f"{k}={v:.4f}" for k, v in entry["metrics"].items()))
        return summary
    results = prepared.suite.run(model, tokenizer)
    parameter = next(model.parameters())
    meta: dict = {"model": str(cfg.model_path), "suite": eval_cfg["name"], "mode": prepared.suite.mode,
                  "device": str(parameter.device), "dtype": str(parameter.dtype).removeprefix("torch.")}
    nll_cfg = eval_cfg.get("nll") or {}
    if nll_cfg.get("enabled"):
        sources = {name: instantiate(node) for name, node in cfg.data_mix.sources.items()}
        texts = heldout_documents(sources, str(nll_cfg["split"]), int(nll_cfg["max_per_domain"]))
        meta["nll"] = domain_nll(model, tokenizer, texts, max_length=int(nll_cfg["max_length"]))
    path = write_results(results, Path(cfg.out_dir), meta)
    summary = json.loads(path.read_text())
    print(f"[infir] eval results: {path}")
    for task, entry in summary["tasks"].items():
        print(f"[infir]   {task}: " + ", ".join(f"{k}={v:.4f}" for k, v in entry["metrics"].items()))
    for domain, values in meta.get("nll", {}).items():
        print(f"[infir]   nll/{domain}: nll={values['nll']:.4f} ppl={values['perplexity']:.2f} bpb={values['bpb']:.4f}")
    return summary


def run_eval_app(cfg: DictConfig) -> dict:
    """Evaluate ``cfg.model_path`` on ``cfg.eval``; returns the results summary written to disk."""
    return run_prepared(prepare_eval(cfg))
