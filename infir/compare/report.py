"""Rendering a comparison: a markdown table, a PNG (one panel per metric) and a JSON file of the raw numbers.

matplotlib is imported only when a figure is drawn, and through ``matplotlib.figure.Figure`` (no pyplot),
so drawing never switches the backend of a notebook that has its own.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infir.compare.aggregate import Comparison, Group

AT_TEXT = {"last": "its last logged value", "min": "its minimum over the run", "max": "its maximum over the run"}


def format_value(value: float | None) -> str:
    """Four decimals for the usual range (losses, bpb, accuracies), significant digits outside it."""
    if value is None:
        return "–"
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.4f}"
    return f"{value:.4g}"


def format_change(change: float | None) -> str:
    return "–" if change is None else f"{change:+.1f} %"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _header(comparison: Comparison) -> list[str]:
    head = [*comparison.group_keys, *comparison.extra_columns, "n"]
    for metric in comparison.metrics:
        head += [f"{metric} mean", f"{metric} min – max"]
        if comparison.baseline is not None:
            head.append(f"{metric} vs {'='.join(comparison.baseline)}")
        head.append(f"{metric} per {comparison.seed_key}")
    return head


def _row(comparison: Comparison, group: Group) -> list[str]:
    row = [*group.key.values(), *(group.extra[c] for c in comparison.extra_columns), str(len(group.jobs))]
    for metric in comparison.metrics:
        stats = group.stats[metric]
        if not stats.n:
            row += ["–", "–"] + (["–"] if comparison.baseline is not None else []) + ["–"]
            continue
        mean = format_value(stats.mean) + (f" (n={stats.n})" if stats.n != len(group.jobs) else "")
        row += [mean, f"{format_value(stats.min)} – {format_value(stats.max)}"]
        if comparison.baseline is not None:
            row.append(format_change(comparison.vs_baseline(group, metric)))
        row.append(", ".join(f"{seed}: {format_value(value)}" for seed, value, _ in stats.values))
    return row


def table(comparison: Comparison) -> str:
    """One row per group: grouping values, extra columns, n; per metric mean, min – max, vs baseline, per seed."""
    head = _header(comparison)
    lines = ["| " + " | ".join(map(_cell, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(_cell, _row(comparison, group))) + " |" for group in comparison.groups]
    return "\n".join(lines)


def markdown(comparison: Comparison) -> str:
    """Title, what is fixed and aggregated, the table, the best group per metric and every skipped job."""
    parts = [f"# {comparison.title}"]
    if comparison.fixed:
        parts.append("fixed: " + ", ".join(f"{key}={value}" for key, value in comparison.fixed.items()))
    parts.append("aggregated over: " + ", ".join(comparison.aggregated))
    by_direction = {d: [m for m in comparison.metrics if comparison.directions[m] == d] for d in ("lower", "higher")}
    parts.append(f"value per job: {AT_TEXT[comparison.at]}; "
                 + "; ".join(f"{d} is better: {', '.join(ms)}" for d, ms in by_direction.items() if ms))
    parts += [f"note: {note}" for note in comparison.notes]
    parts.append(table(comparison))
    parts += [comparison.headline(metric) for metric in comparison.metrics]
    if comparison.skipped:
        parts.append("skipped:\n" + "\n".join(f"- `{skip.job}`: {skip.reason}" for skip in comparison.skipped))
    return "\n\n".join(parts) + "\n"


def as_dict(comparison: Comparison) -> dict[str, Any]:
    """Every number behind the table, per group, metric and seed (job folders included)."""

    def number(value: float | None) -> float | None:
        return None if value is None or math.isnan(value) else value

    groups = []
    for group in comparison.groups:
        base = comparison.baseline_of(group)
        groups.append({
            "label": group.label, "key": group.key, "extra": group.extra, "jobs": [str(job.path) for job in group.jobs],
            "metrics": {metric: {"n": stats.n, "mean": number(stats.mean), "min": number(stats.min),
                                 "max": number(stats.max),
                                 "vs_baseline_pct": number(comparison.vs_baseline(group, metric)),
                                 "baseline": base.label if base is not None else None,
                                 "values": [{comparison.seed_key: seed, "value": number(value), "job": str(path)}
                                            for seed, value, path in stats.values]}
                        for metric, stats in group.stats.items()}})
    best = {metric: getattr(comparison.best(metric), "label", None) for metric in comparison.metrics}
    return {"title": comparison.title, "metrics": comparison.metrics, "directions": comparison.directions,
            "at": comparison.at, "group_keys": comparison.group_keys, "seed_key": comparison.seed_key,
            "fixed": comparison.fixed, "aggregated": comparison.aggregated,
            "baseline": "=".join(comparison.baseline) if comparison.baseline else None, "best": best,
            "groups": groups, "notes": comparison.notes,
            "skipped": [{"job": str(s.job), "reason": s.reason, "metrics": s.metrics} for s in comparison.skipped]}


def figure(comparison: Comparison) -> Any:
    """One panel per metric: a bar per group at its mean, whiskers from the seeds' min to max."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    metrics, groups = comparison.metrics, comparison.groups
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    labels = [group.label.replace(", ", "\n") for group in groups]
    rotate = len(groups) > 4 or max(len(line) for label in labels for line in label.split("\n")) > 14
    panel_width = max(3.4, 0.6 * len(groups) + 1.6)
    fig = Figure(figsize=(panel_width * ncols, (4.2 if rotate else 3.6) * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colors = colormaps["tab10"]
    for ax, metric in zip(axes, metrics):
        shown = [(i, group.stats[metric]) for i, group in enumerate(groups) if group.stats[metric].n]
        means = [stats.mean for _, stats in shown]
        ax.bar([i for i, _ in shown], means, color=[colors(i % 10) for i, _ in shown],
               yerr=[[m - s.min for m, (_, s) in zip(means, shown)], [s.max - m for m, (_, s) in zip(means, shown)]],
               capsize=3)
        ax.set_xticks(range(len(groups)), labels, rotation=30 if rotate else 0, ha="right" if rotate else "center",
                      fontsize=8)
        ax.set_title(f"{metric} ({comparison.directions[metric]} is better)", fontsize=10)
        finite = [v for _, s in shown for v in (s.min, s.max) if not math.isnan(v) and not math.isinf(v)]
        if finite and min(finite) > 0:
            low, high = min(finite), max(finite)
            span = (high - low) or abs(high) * 0.05 or 1.0
            ax.set_ylim(max(0.0, low - 1.5 * span), high + 0.5 * span)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    n_seeds = sorted({len(group.jobs) for group in groups})
    fig.suptitle(f"{comparison.title} (whiskers: min – max over {'/'.join(map(str, n_seeds))} "
                 f"{comparison.seed_key}{'s' if n_seeds != [1] else ''})", fontsize=11)
    return fig


def plot(comparison: Comparison, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure(comparison).savefig(path, dpi=120)
    return path


def write(comparison: Comparison, out_dir: Path, stem: str = "comparison") -> list[Path]:
    """The markdown, the PNG and the JSON under ``out_dir`` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, png, js = (out_dir / f"{stem}{suffix}" for suffix in (".md", ".png", ".json"))
    md.write_text(comparison.markdown())
    plot(comparison, png)
    js.write_text(json.dumps(as_dict(comparison), indent=2) + "\n")
    return [md, png, js]
