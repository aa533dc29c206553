"""Finding and reading Hydra job folders: overrides, composed config and the Lightning CSV metrics.

A job folder is any directory with ``.hydra/overrides.yaml``; it is read, never inferred from its name
(``model-nano+seed-2`` and the older ``model=nano,seed=2`` say the same thing). Only pyyaml and csv are
used, so comparing runs never imports torch.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Subtrees that are never job folders themselves and can be large: not searched.
SKIP_DIRS = frozenset({".hydra", "wandb", "checkpoints", "hf_export", "csv"})
# Columns of Lightning's CSV that are coordinates, not metrics.
INDEX_COLUMNS = frozenset({"step", "epoch"})
AT_CHOICES = ("last", "min", "max")

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class CompareError(ValueError):
    """A bad input to a comparison (no jobs, unknown metric or key): reported in one line."""


def normalize_value(value: Any) -> str:
    """One spelling per value, so ``seed=7`` (typed) equals ``seed: 7`` (composed) and ``1e-3`` equals 0.001."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = str(value).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]  # Hydra's quoting of a typed value
    if _NUMBER.match(text):
        number = float(text)
        if number.is_integer() and abs(number) < 1e15 and not re.search(r"[.eE]", text):
            return str(int(number))
        return repr(number)
    return text


def parse_override(override: str) -> tuple[str, str]:
    """``key=value`` as Hydra's command line takes it (``+key``/``++key`` add, ``~key`` deletes)."""
    text = str(override).strip()
    deleted = text.startswith("~")
    text = text.lstrip("~+")
    key, sep, value = text.partition("=")
    if deleted:
        return key.strip(), "(deleted)"
    return key.strip(), normalize_value(value) if sep else "null"


@dataclass
class Job:
    """One finished or unfinished training job: what was asked for, what was composed, what was logged."""

    path: Path
    overrides: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[tuple[float, float]]] | None = None
    problem: str | None = None  # why this job cannot be compared (unreadable files); None when fine

    @property
    def tags(self) -> list[str]:
        tags = self.config.get("tags") if isinstance(self.config, dict) else None
        return [str(tag) for tag in tags] if isinstance(tags, list) else []

    @property
    def optimized_metric(self) -> str | None:
        metric = self.config.get("optimized_metric") if isinstance(self.config, dict) else None
        return str(metric) if metric else None

    @property
    def metric_names(self) -> list[str]:
        return list(self.series or {})

    def value(self, key: str) -> str | None:
        """The job's value for an override key: as typed, else the config group chosen, else the composed config.

        ``model`` is a config group: its composed value is a mapping, and the mapping's ``name`` field is
        what the job ran (``model=nano`` -> ``config["model"]["name"] == "nano"``). None: the job has no such key.
        """
        if key in self.overrides:
            return self.overrides[key]
        if key in self.choices:
            return normalize_value(self.choices[key])
        found, node = _lookup(self.config, key)
        if not found:
            return None
        if isinstance(node, dict) and "name" in node and not isinstance(node["name"], (dict, list)):
            return normalize_value(node["name"])
        return normalize_value(node)

    def metric(self, name: str, at: str = "last") -> float | None:
        """The job's value of a metric: its last logged value, or the min / max over the run; None if never logged."""
        if at not in AT_CHOICES:
            raise CompareError(f"at={at!r}: expected one of {', '.join(AT_CHOICES)}")
        points = (self.series or {}).get(name)
        if not points:
            return None
        values = [value for _, value in points]
        if at == "last":
            return values[-1]
        finite = [value for value in values if not math.isnan(value)] or values
        return min(finite) if at == "min" else max(finite)


def _lookup(config: Any, dotted: str) -> tuple[bool, Any]:
    """OmegaConf-style ``a.b.0.c`` lookup in plain YAML data: (found, value)."""
    node = config
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def find_job_dirs(dirs: Iterable[str | Path]) -> list[Path]:
    """Every job folder under ``dirs`` (each one included when it is a job itself), sorted, without repeats."""
    found: dict[str, Path] = {}
    for root in dirs:
        root = Path(root)
        if not root.is_dir():
            continue
        for current, subdirs, _ in os.walk(root):
            subdirs[:] = sorted(d for d in subdirs if d not in SKIP_DIRS)
            current_path = Path(current)
            if (current_path / ".hydra" / "overrides.yaml").is_file():
                found.setdefault(os.path.realpath(current_path), current_path)
    return sorted(found.values(), key=lambda p: str(p))


def read_metrics(csv_path: Path) -> dict[str, list[tuple[float, float]]]:
    """Every metric column of a Lightning CSV as (step, value) in logged order; empty cells (sparse rows) skipped."""
    series: dict[str, list[tuple[float, float]]] = {}
    with csv_path.open(newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            step_text = (row.get("step") or "").strip()
            try:
                step = float(step_text) if step_text else float("nan")
            except ValueError:
                raise CompareError(f"{csv_path}:{line}: step {step_text!r} is not a number") from None
            for key, text in row.items():
                if key is None or key in INDEX_COLUMNS or text is None or not text.strip():
                    continue
                try:
                    value = float(text)
                except ValueError:
                    continue  # a text column (Lightning logs none, but a user's callback may)
                series.setdefault(key, []).append((step, value))
    return series


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CompareError(f"{path}: unreadable ({type(error).__name__}: {str(error).splitlines()[0]})") from None


def load_job(path: str | Path) -> Job:
    """Read one job folder; a job whose files are missing or unreadable comes back with ``problem`` set."""
    job = Job(path=Path(path))
    hydra_dir = job.path / ".hydra"
    try:
        overrides = _read_yaml(hydra_dir / "overrides.yaml") or []
        if not isinstance(overrides, list):
            raise CompareError(f"{hydra_dir / 'overrides.yaml'}: expected a list of key=value strings")
        job.overrides = dict(parse_override(item) for item in overrides)
        config_path = hydra_dir / "config.yaml"
        if not config_path.is_file():
            raise CompareError(f"{config_path} is missing")
        config = _read_yaml(config_path) or {}
        if not isinstance(config, dict):
            raise CompareError(f"{config_path}: expected a mapping")
        job.config = config
        hydra_yaml = hydra_dir / "hydra.yaml"
        if hydra_yaml.is_file():
            found, choices = _lookup(_read_yaml(hydra_yaml) or {}, "hydra.runtime.choices")
            job.choices = choices if found and isinstance(choices, dict) else {}
        metrics_csv = job.path / "csv" / "metrics.csv"
        if not metrics_csv.is_file():
            raise CompareError("no csv/metrics.csv (not started, or not logging to CSV)")
        try:
            job.series = read_metrics(metrics_csv)
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise CompareError(f"{metrics_csv}: unreadable ({error})") from None
    except CompareError as error:
        job.problem = str(error)
    return job


def load_jobs(dirs: str | Path | Sequence[str | Path]) -> list[Job]:
    """All job folders under ``dirs`` (searched recursively), read and sorted by path.

    Raises CompareError naming the directories when none holds a job folder.
    """
    dirs = [dirs] if isinstance(dirs, (str, Path)) else list(dirs)
    missing = [str(d) for d in dirs if not Path(d).is_dir()]
    if missing:
        raise CompareError(f"not a directory: {', '.join(missing)}")
    paths = find_job_dirs(dirs)
    if not paths:
        raise CompareError(f"no job folder (a directory with .hydra/overrides.yaml) under {', '.join(map(str, dirs))}")
    return [load_job(path) for path in paths]
