"""Compare the runs of a data-quality multirun: a markdown table and a PNG plot.

    python experiments/data_quality/compare.py outputs/data_quality/multirun [--out experiments/data_quality]

Reads every job folder (Hydra's ``.hydra/config.yaml``, ``csv/metrics.csv``,
``curation_funnel.json``) and reports, per curation recipe, the final held-out
bits per byte on clean validation text (overall and per domain) next to what the
recipe kept. Lower is better.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import yaml

RECIPE_ORDER = ["raw", "heuristic", "heuristic_dedup", "heuristic_dedup_decontam", "full"]


def _final_metrics(metrics_csv: Path) -> dict[str, float]:
    """The last logged value of every val/* metric (the end-of-training validation)."""
    last: dict[str, float] = {}
    with metrics_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key.startswith("val/") and value not in (None, ""):
                    last[key] = float(value)
            if row.get("val/bpb"):
                last["step"] = float(row["step"])
    return last


def load_results(multirun_dir: str | Path) -> list[dict]:
    """One record per job: recipe, final val metrics, kept documents and the job folder."""
    records = []
    for job in sorted(Path(multirun_dir).iterdir()):
        config_path, metrics_csv = job / ".hydra" / "config.yaml", job / "csv" / "metrics.csv"
        if not (config_path.is_file() and metrics_csv.is_file()):
            continue
        config = yaml.safe_load(config_path.read_text())
        record = {"recipe": config["curation"]["name"], "seed": config["seed"], "job": job.name,
                  **_final_metrics(metrics_csv)}
        funnel_path = job / "curation_funnel.json"
        if funnel_path.is_file():
            funnels = json.loads(funnel_path.read_text())["funnels"]
            record["docs_in"] = sum(f[0]["read"] for f in funnels.values())
            record["docs_kept"] = sum(f[-1]["kept"] for f in funnels.values())
        records.append(record)
    if not records:
        raise FileNotFoundError(f"no finished jobs (with .hydra/config.yaml and csv/metrics.csv) in {multirun_dir}")
    rank = {name: i for i, name in enumerate(RECIPE_ORDER)}
    return sorted(records, key=lambda r: (rank.get(r["recipe"], len(rank)), r["recipe"], r["seed"]))


def domains_of(records: list[dict]) -> list[str]:
    return sorted({k.split("/")[-1] for r in records for k in r if k.startswith("val/bpb/")})


def markdown_table(records: list[dict]) -> str:
    """One row per run; "vs raw" compares with the raw run of the same seed."""
    domains = domains_of(records)
    raw_by_seed = {r["seed"]: r["val/bpb"] for r in records if r["recipe"] == "raw"}
    head = ["recipe", "seed", "docs kept / in", "val bpb", "vs raw"] + [f"bpb {d}" for d in domains]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        baseline = raw_by_seed.get(r["seed"])
        delta = f"{100 * (r['val/bpb'] / baseline - 1):+.1f} %" if baseline else "–"
        kept = f"{r['docs_kept']} / {r['docs_in']}" if "docs_kept" in r else "–"
        cells = [r["recipe"], str(r["seed"]), kept, f"{r['val/bpb']:.4f}", delta]
        cells += [f"{r.get(f'val/bpb/{d}', float('nan')):.4f}" for d in domains]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_table(records: list[dict]) -> str:
    """Mean and spread of val bpb per recipe over seeds: the effect has to beat seed noise."""
    by_recipe: dict[str, list[float]] = {}
    for r in records:
        by_recipe.setdefault(r["recipe"], []).append(r["val/bpb"])
    raw = by_recipe.get("raw")
    raw_mean = sum(raw) / len(raw) if raw else None
    lines = ["| recipe | seeds | mean val bpb | min – max | mean vs raw |", "|---|---|---|---|---|"]
    for recipe, values in by_recipe.items():
        mean = sum(values) / len(values)
        delta = f"{100 * (mean / raw_mean - 1):+.1f} %" if raw_mean else "–"
        lines.append(f"| {recipe} | {len(values)} | {mean:.4f} | {min(values):.4f} – {max(values):.4f} | {delta} |")
    return "\n".join(lines)


def plot(records: list[dict], path: Path) -> None:
    """Grouped bars per domain: one bar per recipe at its mean over seeds, whiskers at min and max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    domains = domains_of(records) + ["all"]
    recipes = list(dict.fromkeys(r["recipe"] for r in records))
    width = 0.8 / len(recipes)
    fig, ax = plt.subplots(figsize=(2.4 + 1.7 * len(domains), 3.8))
    for i, recipe in enumerate(recipes):
        runs = [r for r in records if r["recipe"] == recipe]
        values = [[r.get(f"val/bpb/{d}", float("nan")) if d != "all" else r["val/bpb"] for r in runs]
                  for d in domains]
        means = [sum(v) / len(v) for v in values]
        errors = [[m - min(v) for m, v in zip(means, values)], [max(v) - m for m, v in zip(means, values)]]
        ax.bar([j + i * width for j in range(len(domains))], means, width, yerr=errors, capsize=2,
               label=f"{recipe} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
    ax.set_xticks([j + width * (len(recipes) - 1) / 2 for j in range(len(domains))], domains)
    ax.set_ylabel("held-out bits per byte (lower is better)")
    ax.set_title("Same model and token budget, differently curated training data")
    ax.set_ylim(bottom=max(0.0, min(r["val/bpb"] for r in records) * 0.8))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("multirun_dir")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    args = parser.parse_args()
    records = load_results(args.multirun_dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(records) + "\n\n" + mean_table(records)
    (out / "results.md").write_text(table + "\n")
    plot(records, out / "results.png")
    print(table)
    print(f"\nwrote {out / 'results.md'} and {out / 'results.png'}")


if __name__ == "__main__":
    main()
