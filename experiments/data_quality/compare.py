"""Compare the runs of a data-quality multirun: one row per curation recipe, aggregated over seeds.

    python experiments/data_quality/compare.py outputs/data_quality/multirun                      # -> <dir>/comparison/
    python experiments/data_quality/compare.py outputs/data_quality/multirun --out experiments/data_quality  # refresh

This is ``python -m infir.compare`` with the ablation's settings: recipes in the paper's order, held-out
bits per byte overall and per domain (``val/bpb``, ``val/bpb/*``; lower is better), "vs" the raw recipe,
and the documents each recipe kept (from the job's ``curation_funnel.json``). Other overrides that vary
(``model=tiny,nano``) get their own rows instead of being averaged in.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from infir.compare import Comparison, CompareError, Job, compare, load_jobs, varying_keys  # noqa: E402

RECIPE_ORDER = ["raw", "heuristic", "heuristic_dedup", "heuristic_dedup_decontam", "full"]
METRICS = ["val/bpb", "val/bpb/*"]
BASELINE = "curation=raw"
STEM = "results"  # results.md / results.png / results.json, the names the README links


def docs_kept(jobs: Sequence[Job]) -> str:
    """``kept / in`` documents over all curated sources, from each job's curation funnel (the same for every seed)."""
    cells = []
    for job in jobs:
        path = job.path / "curation_funnel.json"
        if not path.is_file():
            continue
        try:
            funnels = json.loads(path.read_text())["funnels"]
            cell = (f"{sum(stages[-1]['kept'] for stages in funnels.values())} / "
                    f"{sum(stages[0]['read'] for stages in funnels.values())}")
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise CompareError(f"{path}: expected {{\"funnels\": {{source: [{{\"read\": n, \"kept\": n}}, ...]}}}}") \
                from None
        cells.append(cell)
    return ", ".join(dict.fromkeys(cells)) or "–"


def compare_recipes(jobs: Sequence[Job], title: str = "Data quality ablation") -> Comparison:
    """The ablation's comparison: grouped by recipe (and any other override that varies), baseline raw."""
    by = varying_keys(jobs)
    if "curation" not in by:
        by.insert(0, "curation")
    return compare(jobs, metrics=METRICS, by=by, baseline=BASELINE, order={"curation": RECIPE_ORDER},
                   extra_columns={"docs kept / in": docs_kept}, title=title)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("multirun_dir")
    parser.add_argument("--out", help="output folder (default: <multirun_dir>/comparison; "
                                      "experiments/data_quality refreshes the committed results)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.multirun_dir) / "comparison"
    try:
        comparison = compare_recipes(load_jobs([args.multirun_dir]))
        written = comparison.write(out, stem=STEM)
    except CompareError as error:
        print(f"[infir] compare: {error}", file=sys.stderr)
        return 2
    print(comparison.markdown(), end="")
    print(f"[infir] compare: wrote {', '.join(map(str, written))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
