"""Validation of an ``eval`` config that needs no data, model or heavy import.

``python -m infir.eval`` runs it before importing the suite (torch, transformers: seconds), so a typo in a task
name or key fails in about a second, in one line naming the key; :class:`~infir.eval.suite.EvalSuite` runs it
again before loading any record (the training callback builds suites directly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infir.eval.tasks import BASE, INSTRUCT, TASKS

TASK_KEYS = frozenset({"source", "fewshot", "num_fewshot", "sampler", "fewshot_seed", "variant", "method", "limit",
                       "num_samples", "temperature", "top_p", "max_new_tokens", "ks", "enabled"})


def check_task_config(name: str, cfg: Any) -> None:
    """Name and keys of one ``eval.tasks.<name>`` entry."""
    if name not in TASKS:
        raise ValueError(f"eval.tasks: unknown task {name!r}; known: {sorted(TASKS)}")
    if not isinstance(cfg, Mapping):
        raise ValueError(f"eval.tasks.{name} must be a mapping of settings, got {cfg!r}")  # noqa: TRY004
    unknown = sorted(set(cfg) - TASK_KEYS)
    if unknown:
        raise ValueError(f"eval.tasks.{name}: unknown key(s) {unknown}; known: {sorted(TASK_KEYS)}")
    if not isinstance(cfg.get("source"), Mapping):  # a config error like the others, so ValueError
        raise ValueError(  # noqa: TRY004
            f"eval.tasks.{name}.source is required: `embedded: <name>` or `path: <file or dir>`")


def enabled_tasks(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``eval.tasks`` without the null entries and those with ``enabled: false``."""
    return {name: task_cfg for name, task_cfg in (cfg.get("tasks") or {}).items()
            if task_cfg is not None and (not isinstance(task_cfg, Mapping) or task_cfg.get("enabled", True))}


VL_FORMATS = ("vqa", "screenspot")
VL_METRICS = ("transcription", "exact_match", "click")
VL_TASK_KEYS = ("enabled", "format", "metric", "source", "limit", "max_new_tokens")


def check_vl_eval_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The enabled tasks of a multimodal (``kind: vl``) suite after checking formats, metrics and keys."""
    tasks = enabled_tasks(cfg)
    if not tasks:
        raise ValueError("eval.tasks is empty: enable at least one multimodal task")
    for name, task in tasks.items():
        unknown = sorted(set(task) - set(VL_TASK_KEYS))
        if unknown:
            raise ValueError(f"eval.tasks.{name}: unknown key(s) {unknown}; known: {sorted(VL_TASK_KEYS)}")
        if task.get("format") not in VL_FORMATS:
            raise ValueError(f"eval.tasks.{name}.format={task.get('format')!r}: choose one of {VL_FORMATS}")
        if task.get("metric") not in VL_METRICS:
            raise ValueError(f"eval.tasks.{name}.metric={task.get('metric')!r}: choose one of {VL_METRICS}")
        if (task["format"] == "screenspot") != (task["metric"] == "click"):
            raise ValueError(f"eval.tasks.{name}: metric click goes with format screenspot "
                             f"(got {task['format']}/{task['metric']})")
        source = task.get("source")
        if not isinstance(source, Mapping) or not ({"embedded", "path"} & set(source)):
            raise ValueError(f"eval.tasks.{name}.source needs `embedded: <set>` (+ params) or `path: <file>` "
                             f"(+ image_root)")
    return tasks


def check_eval_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The enabled tasks of ``cfg`` after checking mode, task names and keys, and the code-execution opt-in."""
    if cfg.get("kind") == "vl":
        return check_vl_eval_config(cfg)
    mode = str(cfg.get("mode", BASE))
    if mode not in (BASE, INSTRUCT):
        raise ValueError(f"eval.mode must be '{BASE}' or '{INSTRUCT}', got {mode!r}")
    tasks = enabled_tasks(cfg)
    if not tasks and not (cfg.get("nll") or {}).get("enabled"):
        raise ValueError("eval.tasks is empty: enable at least one task (or eval.nll)")
    for name, task_cfg in tasks.items():
        check_task_config(name, task_cfg)
    code_tasks = [name for name in tasks if TASKS[name].needs_sandbox]
    if code_tasks and not cfg.get("allow_code_execution", False):
        raise PermissionError(f"eval tasks {code_tasks} execute model-written code; set "
                              "eval.allow_code_execution=true to run it in the sandbox, or disable them")
    return tasks
