"""The evaluation app behind ``python -m infir.eval``: load the model, run the suite, write results."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from infir.env import configure_offline_defaults
from infir.eval.loading import load_model
from infir.eval.nll import domain_nll, heldout_documents
from infir.eval.suite import EvalSuite, write_results

log = logging.getLogger(__name__)


def run_eval_app(cfg: DictConfig) -> dict:
    """Evaluate ``cfg.model_path`` on ``cfg.eval``; returns the results summary written to disk."""
    configure_offline_defaults()
    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg.torch_threads))
    eval_cfg = OmegaConf.to_container(cfg.eval, resolve=True)
    if not eval_cfg.get("allow_code_execution"):
        log.warning("code tasks (HumanEval, MBPP) are skipped: set eval.allow_code_execution=true to run "
                    "model-written code in the sandbox")
    suite = EvalSuite(eval_cfg)  # records and sandbox checks fail before the model loads
    model, tokenizer = load_model(cfg.model_path, device=str(cfg.device), dtype=str(cfg.dtype))
    out_dir = Path(cfg.out_dir)
    results = suite.run(model, tokenizer)
    meta: dict = {"model": str(cfg.model_path), "suite": eval_cfg["name"], "mode": suite.mode}
    nll_cfg = eval_cfg.get("nll") or {}
    if nll_cfg.get("enabled"):
        sources = {name: instantiate(node) for name, node in cfg.data_mix.sources.items()}
        texts = heldout_documents(sources, str(nll_cfg["split"]), int(nll_cfg["max_per_domain"]))
        meta["nll"] = domain_nll(model, tokenizer, texts, max_length=int(nll_cfg["max_length"]))
    path = write_results(results, out_dir, meta)
    summary = json.loads(path.read_text())
    print(f"[infir] eval results: {path}")
    for task, entry in summary["tasks"].items():
        print(f"[infir]   {task}: " + ", ".join(f"{k}={v:.4f}" for k, v in entry["metrics"].items()))
    for domain, values in meta.get("nll", {}).items():
        print(f"[infir]   nll/{domain}: nll={values['nll']:.4f} ppl={values['perplexity']:.2f} bpb={values['bpb']:.4f}")
    return summary
