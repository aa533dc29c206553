"""An evaluation suite: tasks built once from config, run against any model + tokenizer.

The suite loads records and exemplars once (the training callback runs it many times), renders
prompts for the configured mode, asks the model for generations or option log-likelihoods, lets
each task score them (code in the sandbox), and returns metrics plus one record per sample.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from infir.eval.checks import check_eval_config, check_task_config
from infir.eval.embedded import load_embedded
from infir.eval.generation import GenerationConfig, generate
from infir.eval.likelihood import continuation_logprobs
from infir.eval.tasks import BASE, INSTRUCT, LOGLIK, TASKS, ScoringContext, Task
from infir.eval.tasks.base import DEFAULT_FEWSHOT_SEED
from infir.models.tokenizer import prefix_token_id
from infir.records import read_rows, validate_rows
from infir.sandbox import Sandbox, SandboxLimits

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "You are a helpful assistant."  # the paper's instruct style (PAPER.md §4)


def _rows(source: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """Rows from ``{embedded: name, split, ...params}`` or ``{path, split}``; names ``where`` on error."""
    source = dict(source)
    split = source.pop("split", None)
    if "embedded" in source:
        name = source.pop("embedded")
        return load_embedded(name, split or "heldout_eval", **source)
    if "path" in source:
        return read_rows(source["path"], split)
    raise ValueError(f"{where} needs `embedded: <name>` or `path: <file or dir>`, got {sorted(source)}")


@dataclass
class TaskRun:
    """One configured task with its loaded records, decoding settings and the settings that change its numbers."""

    task: Task
    generation: GenerationConfig
    ks: tuple[int, ...]
    skipped: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskResult:
    metrics: dict[str, float]
    samples: list[dict[str, Any]]
    skipped: dict[str, int]
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)


def build_task(name: str, cfg: Mapping[str, Any], mode: str, defaults: Mapping[str, Any]) -> TaskRun:
    """Load one task's records and exemplars as configured under ``eval.tasks.<name>``."""
    check_task_config(name, cfg)
    task_cls = TASKS[name]
    where = f"eval.tasks.{name}"
    loaded = validate_rows(_rows(cfg["source"], f"{where}.source"), task_cls.required_fields, where,
                           task_cls.normalise)
    limit = cfg.get("limit")
    records = loaded.records[:limit] if limit else loaded.records
    fewshot: list[dict[str, Any]] = []
    num_fewshot = cfg.get("num_fewshot")  # None: the task's (variant's) lm-eval default
    if cfg.get("fewshot") and num_fewshot != 0 and mode == BASE:
        fewshot = validate_rows(_rows(cfg["fewshot"], f"{where}.fewshot"), task_cls.required_fields,
                                f"{where}.fewshot", task_cls.normalise).records
    kwargs = {"mode": mode, "variant": cfg.get("variant"), "sampler": cfg.get("sampler"),
              "fewshot_seed": int(cfg.get("fewshot_seed", defaults.get("fewshot_seed", DEFAULT_FEWSHOT_SEED)))}
    if cfg.get("method"):
        kwargs["method"] = str(cfg["method"])
    task = task_cls(records, fewshot, num_fewshot=num_fewshot, **kwargs)
    num_samples = int(cfg.get("num_samples", 1))
    temperature = float(cfg.get("temperature", 0.0))
    generation = GenerationConfig(
        max_new_tokens=int(cfg.get("max_new_tokens", defaults["max_new_tokens"])),
        do_sample=temperature > 0, temperature=temperature if temperature > 0 else 1.0,
        top_p=float(cfg.get("top_p", 1.0)), num_samples=num_samples,
        stop=tuple(task.stop) if mode == BASE else (),  # a chat reply ends at EOS; few-shot stops would cut it
        batch_size=int(defaults["batch_size"]), seed=int(defaults.get("seed", 0)))
    ks = tuple(int(k) for k in cfg.get("ks", (1,)))
    if any(k > num_samples for k in ks):
        raise ValueError(f"{where}: pass@k needs num_samples >= k; got ks={list(ks)}, num_samples={num_samples}")
    settings = {"source": dict(cfg["source"]), "limit": limit,
                "fewshot_source": (dict(cfg["fewshot"]) if fewshot else "builtin") if task.num_fewshot else None,
                **task.settings()}
    if task.method != LOGLIK:
        settings["generation"] = {**asdict(generation), "stop": list(generation.stop), "ks": list(ks)}
    if mode == INSTRUCT:
        settings["system_prompt"] = SYSTEM_PROMPT
    return TaskRun(task, generation, ks, loaded.skipped, settings)


def prefix_policy(tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """Which token every evaluated sequence starts with, and why (BOS the tokenizer adds, or EOS as separator)."""
    token_id = prefix_token_id(tokenizer)
    uses_bos = token_id == tokenizer.bos_token_id and token_id != tokenizer.eos_token_id
    return {"id": token_id, "token": tokenizer.convert_ids_to_tokens(token_id),
            "policy": "bos (the tokenizer adds it)" if uses_bos else "eos (document separator; no BOS added)"}


class EvalSuite:
    """The tasks of one ``eval`` config; ``run`` evaluates a model and optionally writes results."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        tasks = check_eval_config(cfg)  # every name and key first: a typo fails before any loading
        self.mode = str(cfg.get("mode", BASE))
        defaults = {"max_new_tokens": cfg.get("max_new_tokens", 256), "batch_size": cfg.get("batch_size", 16),
                    "seed": cfg.get("seed", 0), "fewshot_seed": cfg.get("fewshot_seed", DEFAULT_FEWSHOT_SEED)}
        self.runs = {name: build_task(name, task_cfg, self.mode, defaults) for name, task_cfg in tasks.items()}
        self.sandbox: Sandbox | None = None
        if any(run.task.needs_sandbox for run in self.runs.values()):
            sandbox_cfg = dict(cfg.get("sandbox") or {})
            workers = int(sandbox_cfg.pop("workers", 2))
            cgroups = str(sandbox_cfg.pop("cgroups", "auto"))
            self.sandbox = Sandbox(SandboxLimits.from_mapping(sandbox_cfg), allow_code_execution=True, workers=workers,
                                   cgroups=cgroups)
            self.sandbox.check()
        self.progress = bool(cfg.get("progress", False))

    def render(self, task: Task, record: Mapping[str, Any], tokenizer: PreTrainedTokenizerBase) -> str:
        """The model input for one record: few-shot text (base) or the chat template (instruct)."""
        if self.mode == BASE:
            return task.prompt(record)
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("eval.mode=instruct needs a tokenizer with a chat template (SFT exports have one); "
                             "use eval.mode=base for pre-trained models")
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": task.instruction(record)}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        bos = tokenizer.bos_token
        return text[len(bos):] if bos and text.startswith(bos) else text  # generation adds BOS itself

    @torch.inference_mode()
    def run_task(self, name: str, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase) -> TaskResult:
        run = self.runs[name]
        task = run.task
        start = time.perf_counter()
        prompts = [self.render(task, r, tokenizer) for r in task.records]
        context = ScoringContext(sandbox=self.sandbox, ks=run.ks)
        if task.method == LOGLIK:
            options = [task.choices(r) for r in task.records]
            pairs = [(p, o) for p, opts in zip(prompts, options) for o in opts]
            scores = iter(lp for lp, _ in continuation_logprobs(model, tokenizer, pairs, run.generation.batch_size))
            logprobs = [[next(scores) for _ in opts] for opts in options]
            scored = task.score_loglik(task.records, logprobs)
            outputs: list[list[str]] = [[] for _ in prompts]
        else:
            outputs = generate(model, tokenizer, prompts, run.generation, progress=self.progress)
            scored = task.score(task.records, outputs, context)
        metrics = task.aggregate(scored, context)
        samples = []
        for index, (record, prompt, outs, score) in enumerate(zip(task.records, prompts, outputs, scored)):
            sample = {"index": index, "id": record.get("task_id") or record.get("id") or index, "prompt": prompt,
                      "output": outs[0] if outs else None, **score}
            if len(outs) > 1:
                sample["outputs"] = outs
            samples.append(sample)
        settings = {**run.settings, "prefix_token": prefix_policy(tokenizer)}
        return TaskResult(metrics, samples, run.skipped, time.perf_counter() - start, settings)

    def run(self, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
            out_dir: Path | None = None) -> dict[str, TaskResult]:
        """Evaluate every task; with ``out_dir``, write ``results.json`` and ``samples_<task>.jsonl``."""
        results = {}
        for name in self.runs:
            results[name] = self.run_task(name, model, tokenizer)
            log.info("eval %s: %s (%d samples, %.1f s)", name,
                     {k: round(v, 4) for k, v in results[name].metrics.items()}, len(results[name].samples),
                     results[name].seconds)
        if out_dir is not None:
            write_results(results, out_dir, {"mode": self.mode})
        return results


def flat_metrics(results: Mapping[str, TaskResult], prefix: str = "eval") -> dict[str, float]:
    """``{"eval/<task>/<metric>": value}``, the names the callback logs to W&B and CSV."""
    return {f"{prefix}/{task}/{metric}": value for task, result in results.items()
            for metric, value in result.metrics.items()}


def write_results(results: Mapping[str, TaskResult], out_dir: Path, meta: Mapping[str, Any]) -> Path:
    """``results.json`` (metrics, counts, skips, timings, the settings behind each number) and one JSONL line per
    sample per task. Two results files are comparable when their tasks' ``settings`` are equal."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {**meta, "tasks": {name: {"metrics": r.metrics, "samples": len(r.samples), "skipped": r.skipped,
                                        "seconds": round(r.seconds, 2), "settings": r.settings}
                                 for name, r in results.items()}}
    path = out_dir / "results.json"
    path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    for name, result in results.items():
        with (out_dir / f"samples_{name}.jsonl").open("w", encoding="utf-8") as f:
            for sample in result.samples:
                f.write(json.dumps(sample, ensure_ascii=False, default=str) + "\n")
    return path
