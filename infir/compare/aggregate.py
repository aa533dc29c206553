"""Grouping jobs by the overrides that differ between them and aggregating each group's metrics over seeds.

A sweep ``model=tiny,nano seed=1,2,3`` gives one group per model, each with n=3 seeds: the seed key is
what a group aggregates over, never what it is grouped by. Keys every job shares are reported once as
fixed; overrides that only move files or name things (paths, resume, loggers, tags) never group.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from infir.compare import report
from infir.compare.runs import AT_CHOICES, CompareError, Job, normalize_value

# Overrides that change where things go or what they are called, not what a job computes.
BOOKKEEPING_KEYS = ("paths", "paths.*", "resume", "ckpt_path", "logger*", "hydra", "hydra.*", "hydra/*",
                    "tags", "group", "sweep_name")
UNSET = "(unset)"
DIRECTIONS = ("lower", "higher")
# Metric name parts for which a higher value is better; every other metric (losses, bpb, ppl) is lower-better.
_HIGHER_IS_BETTER = re.compile(r"accuracy|^acc$|^acc_|_acc$|pass@|mfu|tokens_per_s|exact_match|prob_correct")

ExtraColumn = Callable[[Sequence[Job]], str]


def is_bookkeeping(key: str) -> bool:
    return any(fnmatchcase(key, pattern) for pattern in BOOKKEEPING_KEYS)


def direction(metric: str, overrides: Mapping[str, str] | None = None) -> str:
    """``"lower"`` or ``"higher"`` is better: accuracy, pass@k, MFU and throughput are higher-better.

    ``overrides`` maps metric names or globs to a direction and wins over the default.
    """
    for pattern, chosen in (overrides or {}).items():
        if chosen not in DIRECTIONS:
            raise CompareError(f"direction {pattern}={chosen}: expected lower or higher")
        if fnmatchcase(metric, pattern):
            return chosen
    return "higher" if any(_HIGHER_IS_BETTER.search(part) for part in metric.split("/")) else "lower"


def _is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def expand_metrics(patterns: Sequence[str], jobs: Sequence[Job]) -> list[str]:
    """Metric names (globs like ``val/bpb/*`` expanded over what the jobs logged), each once, in pattern order."""
    logged = sorted({name for job in jobs for name in job.metric_names})
    expanded: list[str] = []
    for pattern in patterns:
        matches = [name for name in logged if fnmatchcase(name, pattern)] if _is_glob(pattern) else \
            [pattern] if pattern in logged else []
        if not matches:
            raise CompareError(f"metric {pattern!r} matches nothing any job logged; "
                               f"logged: {', '.join(logged) or 'none'}")
        expanded += [name for name in matches if name not in expanded]
    return expanded


def _override_keys(jobs: Sequence[Job]) -> list[str]:
    """Every key some job overrode, in order of first appearance, bookkeeping left out."""
    keys: dict[str, None] = {}
    for job in jobs:
        keys.update((key, None) for key in job.overrides if not is_bookkeeping(key))
    return list(keys)


def _value(job: Job, key: str) -> str:
    value = job.value(key)
    return UNSET if value is None else value


def varying_keys(jobs: Sequence[Job], seed_key: str = "seed") -> list[str]:
    """The override keys whose values differ between the jobs, without the seed key: the default grouping."""
    return [key for key in _override_keys(jobs)
            if key != seed_key and len({_value(job, key) for job in jobs}) > 1]


def _numeric(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _value_rank(values: Sequence[str], preferred: Sequence[str] = ()) -> dict[str, tuple]:
    """Row order of one key's values: ``preferred`` first, then numerically if all are numbers, else as first seen."""
    seen = list(dict.fromkeys(values))
    numbers = [_numeric(value) for value in seen]
    if all(number is not None for number in numbers):
        seen = [value for _, value in sorted(zip(numbers, seen))]
    preferred = [normalize_value(value) for value in preferred]
    return {value: ((0, preferred.index(value)) if value in preferred else (1, i)) for i, value in enumerate(seen)}


def _seed_order(seed: str) -> tuple:
    number = _numeric(seed)
    return (0, number, "") if number is not None else (1, 0.0, seed)


@dataclass
class MetricStats:
    """One metric of one group: the value of every seed that logged it."""

    values: list[tuple[str, float, Path]] = field(default_factory=list)  # (seed, value, job folder)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(v for _, v, _ in self.values) / self.n if self.values else math.nan

    @property
    def min(self) -> float:
        return min((v for _, v, _ in self.values), default=math.nan)

    @property
    def max(self) -> float:
        return max((v for _, v, _ in self.values), default=math.nan)


@dataclass
class Group:
    """One row: the jobs sharing the grouping keys' values, aggregated over seeds."""

    key: dict[str, str]
    jobs: list[Job]
    stats: dict[str, MetricStats]
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The group by its varying overrides, e.g. ``model=nano, curation=full``."""
        return ", ".join(f"{key}={value}" for key, value in self.key.items()) or "all jobs"


@dataclass
class Skip:
    """A job (or some of its metrics) left out of the table, and why."""

    job: Path
    reason: str
    metrics: list[str] = field(default_factory=list)  # empty: the whole job


@dataclass
class Comparison:
    """The grouped, seed-aggregated result of :func:`compare`; render it with markdown(), plot() or write()."""

    title: str
    metrics: list[str]
    group_keys: list[str]
    groups: list[Group]
    seed_key: str = "seed"
    at: str = "last"
    fixed: dict[str, str] = field(default_factory=dict)
    aggregated: list[str] = field(default_factory=list)
    baseline: tuple[str, str] | None = None
    directions: dict[str, str] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def _metric(self, metric: str | None) -> str:
        metric = metric or self.metrics[0]
        if metric not in self.metrics:
            raise CompareError(f"metric {metric!r} is not in this comparison ({', '.join(self.metrics)})")
        return metric

    def baseline_of(self, group: Group) -> Group | None:
        """The baseline group for ``group``: the baseline value, every other grouping key the same."""
        if self.baseline is None:
            return None
        key, value = self.baseline
        wanted = {**group.key, key: value}
        return next((other for other in self.groups if other.key == wanted), None)

    def vs_baseline(self, group: Group, metric: str) -> float | None:
        """Relative change of the group's mean against its baseline's mean, in %."""
        base = self.baseline_of(group)
        if base is None or not group.stats[metric].n or not base.stats[metric].n or base.stats[metric].mean == 0:
            return None
        return 100.0 * (group.stats[metric].mean / base.stats[metric].mean - 1.0)

    def best(self, metric: str | None = None) -> Group | None:
        """The group with the best mean (lowest, or highest for a higher-is-better metric); None if no values."""
        metric = self._metric(metric)
        candidates = [g for g in self.groups if g.stats[metric].n and not math.isnan(g.stats[metric].mean)]
        if not candidates:
            return None
        sign = -1.0 if self.directions[metric] == "higher" else 1.0
        return min(candidates, key=lambda g: sign * g.stats[metric].mean)

    def headline(self, metric: str | None = None) -> str:
        """``best: curation=full at 2.4350 val/bpb; baseline curation=raw 2.5360 (-4.0 %)``."""
        metric = self._metric(metric)
        best = self.best(metric)
        if best is None:
            return f"best: no group logged {metric}"
        text = f"best: {best.label} at {report.format_value(best.stats[metric].mean)} {metric}"
        base = self.baseline_of(best)
        change = self.vs_baseline(best, metric)
        if base is not None and change is not None:
            text += f"; baseline {base.label} {report.format_value(base.stats[metric].mean)} ({change:+.1f} %)"
        return text

    def markdown(self) -> str:
        return report.markdown(self)

    def to_dict(self) -> dict[str, Any]:
        return report.as_dict(self)

    def figure(self) -> Any:
        """A matplotlib Figure: one panel per metric, bars at group means, whiskers at min and max over seeds."""
        return report.figure(self)

    def plot(self, path: str | Path) -> Path:
        return report.plot(self, Path(path))

    def write(self, out_dir: str | Path, stem: str = "comparison") -> list[Path]:
        """``<stem>.md``, ``<stem>.png`` and ``<stem>.json`` (the raw numbers) under ``out_dir``."""
        return report.write(self, Path(out_dir), stem)


def _parse_baseline(baseline: str | tuple[str, str] | None) -> tuple[str, str] | None:
    if baseline is None:
        return None
    if isinstance(baseline, str):
        key, sep, value = baseline.partition("=")
        if not sep or not key.strip():
            raise CompareError(f"baseline {baseline!r}: expected KEY=VALUE, e.g. curation=raw")
        baseline = (key, value)
    return baseline[0].strip(), normalize_value(baseline[1])


def _select(jobs: Sequence[Job], tags: Sequence[str], notes: list[str]) -> list[Job]:
    """The jobs whose config tags hold every one of ``tags``."""
    selected = [job for job in jobs if all(tag in job.tags for tag in tags)]
    if tags:
        if not selected:
            seen = sorted({tag for job in jobs for tag in job.tags})
            raise CompareError(f"no job has tags {', '.join(tags)} ({len(jobs)} jobs; their tags: "
                               f"{', '.join(seen) or 'none'})")
        notes.append(f"tags {', '.join(tags)}: {len(selected)} of {len(jobs)} jobs")
    return selected


def _metric_names(jobs: Sequence[Job], metrics: Sequence[str] | None) -> list[str]:
    """``metrics`` expanded, or the jobs' optimized_metric when none are given."""
    if metrics:
        return expand_metrics(list(metrics), jobs)
    wanted = list(dict.fromkeys(job.optimized_metric for job in jobs if job.optimized_metric))
    if not wanted:
        raise CompareError("the jobs' configs name no optimized_metric: pass --metric")
    try:
        return expand_metrics(wanted, jobs)
    except CompareError as error:
        raise CompareError(f"optimized_metric (the default): {error}") from None


def _with_metrics(jobs: Sequence[Job], names: Sequence[str], at: str, skipped: list[Skip]) -> list[Job]:
    """The jobs that logged at least one of ``names``; what each job lacks goes to ``skipped``."""
    used = []
    for job in jobs:
        missing = [name for name in names if job.metric(name, at) is None]
        if missing:
            skipped.append(Skip(job.path, f"never logged {', '.join(missing)}", missing))
        if len(missing) < len(names):
            used.append(job)
    if not used:
        raise CompareError(f"no job logged {', '.join(names)}")
    return used


def _grouping_keys(jobs: Sequence[Job], by: Sequence[str] | None, seed_key: str) -> list[str]:
    if not by:
        return varying_keys(jobs, seed_key)
    keys = list(dict.fromkeys(by))
    unknown = [key for key in keys if all(job.value(key) is None for job in jobs)]
    if unknown:
        overridden = ", ".join(_override_keys(jobs)) or "none"
        raise CompareError(f"no job has key {', '.join(unknown)} (overridden keys: {overridden})")
    return keys


def compare(jobs: Sequence[Job], metrics: Sequence[str] | None = None, by: Sequence[str] | None = None,
            seed_key: str = "seed", baseline: str | tuple[str, str] | None = None, at: str = "last",
            order: Mapping[str, Sequence[str]] | None = None, tags: Sequence[str] = (),
            directions: Mapping[str, str] | None = None,
            extra_columns: Mapping[str, ExtraColumn] | None = None, title: str | None = None) -> Comparison:
    """Group ``jobs`` and aggregate ``metrics`` over seeds.

    metrics: names or globs (``val/bpb/*``); default: the jobs' ``optimized_metric``. by: grouping keys
    (default: the override keys that differ, seed key left out). baseline: ``key=value`` for a
    "vs baseline" column. at: per job, the ``last`` logged value or the ``min`` / ``max`` over the run.
    order: value order per key. tags: keep only jobs whose config ``tags`` hold all of these.
    directions: metric glob -> ``lower`` / ``higher`` is better. extra_columns: column name -> function
    of a group's jobs giving the cell text (e.g. documents kept by the curation).
    """
    if at not in AT_CHOICES:
        raise CompareError(f"at={at!r}: expected one of {', '.join(AT_CHOICES)}")
    if not jobs:
        raise CompareError("no jobs to compare")
    bad = [f"{pattern}={chosen}" for pattern, chosen in (directions or {}).items() if chosen not in DIRECTIONS]
    if bad:
        raise CompareError(f"direction {', '.join(bad)}: expected METRIC=lower or METRIC=higher")
    notes: list[str] = []
    selected = _select(jobs, tags, notes)
    readable = [job for job in selected if job.problem is None]
    skipped = [Skip(job.path, job.problem) for job in selected if job.problem is not None]
    if not readable:
        raise CompareError(f"none of the {len(selected)} job folders can be read; "
                           f"{skipped[0].job}: {skipped[0].reason}")
    names = _metric_names(readable, metrics)
    used = _with_metrics(readable, names, at, skipped)
    group_keys = _grouping_keys(used, by, seed_key)
    values = {key: [_value(job, key) for job in used] for key in dict.fromkeys([*_override_keys(used), *group_keys])}
    fixed = {key: vals[0] for key, vals in values.items() if key not in group_keys and len(set(vals)) == 1}
    aggregated = [seed_key] + [key for key, vals in values.items()
                               if key not in group_keys and key != seed_key and len(set(vals)) > 1]
    parsed_baseline = _parse_baseline(baseline)
    if parsed_baseline is not None and parsed_baseline[0] not in group_keys:
        raise CompareError(f"baseline {'='.join(parsed_baseline)}: {parsed_baseline[0]} is not a grouping key "
                           f"({', '.join(group_keys) or 'none'})")
    order = dict(order or {})
    bad = [key for key in order if key not in group_keys]
    if bad:
        raise CompareError(f"order for {', '.join(bad)}: not a grouping key ({', '.join(group_keys) or 'none'})")
    ranks = {key: _value_rank(values[key], order.get(key, ())) for key in group_keys}

    rows: dict[tuple[str, ...], list[Job]] = {}
    for job in used:
        rows.setdefault(tuple(_value(job, key) for key in group_keys), []).append(job)
    groups = []
    for row_key in sorted(rows, key=lambda k: tuple(ranks[key][v] for key, v in zip(group_keys, k))):
        members = sorted(rows[row_key], key=lambda job: _seed_order(_value(job, seed_key)))
        stats = {name: MetricStats([(_value(job, seed_key), job.metric(name, at), job.path) for job in members
                                    if job.metric(name, at) is not None]) for name in names}
        extra = {column: str(cell(members)) for column, cell in (extra_columns or {}).items()}
        groups.append(Group(dict(zip(group_keys, row_key)), members, stats, extra))
        seeds = [_value(job, seed_key) for job in members]
        for seed in sorted({seed for seed in seeds if seeds.count(seed) > 1}, key=_seed_order):
            twins = [str(job.path) for job in members if _value(job, seed_key) == seed]
            notes.append(f"{groups[-1].label}: {seed_key}={seed} in {len(twins)} jobs ({', '.join(twins)})")
    if parsed_baseline is not None and not any(g.key[parsed_baseline[0]] == parsed_baseline[1] for g in groups):
        seen = ", ".join(dict.fromkeys(g.key[parsed_baseline[0]] for g in groups))
        notes.append(f"baseline {'='.join(parsed_baseline)}: no such group ({parsed_baseline[0]}: {seen})")
    return Comparison(
        title=title or f"{len(used)} jobs", metrics=names, group_keys=group_keys, groups=groups, seed_key=seed_key,
        at=at, fixed=fixed, aggregated=aggregated, baseline=parsed_baseline,
        directions={name: direction(name, directions) for name in names},
        extra_columns=list(extra_columns or {}), skipped=skipped, notes=notes)
