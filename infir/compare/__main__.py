"""``python -m infir.compare DIR [DIR ...]``: compare the jobs of one or more sweeps.

Prints the markdown table (stdout) and writes ``comparison.md``, ``comparison.png`` and
``comparison.json`` to ``--out`` (default ``<first DIR>/comparison/``, beside the runs). A bad input
(no job folder, a metric or key no job has) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from infir.compare.aggregate import compare
from infir.compare.runs import AT_CHOICES, CompareError, load_jobs

EXIT_BAD_INPUT = 2


def _pairs(items: Sequence[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise CompareError(f"{option} {item!r}: expected KEY=VALUE")
        pairs.append((key, value))
    return pairs


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m infir.compare", description="Compare the jobs of one or more sweeps: one row per group of the overrides that differ, "
                                            "aggregated over seeds.")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="sweep folders (searched recursively) or job folders")
    p.add_argument("--metric", action="append", default=[], metavar="M",
                   help="metric name or glob ('val/bpb/*'); repeatable; default: the jobs' optimized_metric")
    p.add_argument("--by", action="append", default=[], metavar="KEY",
                   help="group by these keys (repeatable or comma-separated); default: the overrides that differ")
    p.add_argument("--seed-key", default="seed", help="the key aggregated over (default: seed)")
    p.add_argument("--baseline", metavar="KEY=VALUE", help="add a 'vs baseline' column (change of the mean, %%)")
    p.add_argument("--tag", action="append", default=[], metavar="T", help="keep only jobs tagged T (all must match)")
    p.add_argument("--at", choices=AT_CHOICES, default="last",
                   help="value per job: last logged (default), or min / max over the run")
    p.add_argument("--order", action="append", default=[], metavar="KEY=v1,v2,...", help="row order of a key's values")
    p.add_argument("--direction", action="append", default=[], metavar="METRIC=lower|higher",
                   help="which way is better for a metric or glob (default: higher for accuracy, pass@k, mfu, "
                        "tokens_per_s; lower otherwise)")
    p.add_argument("--out", metavar="OUT_DIR", help="where to write comparison.{md,png,json} "
                                                    "(default: <first DIR>/comparison)")
    p.add_argument("--title", help="title of the table and plot")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = Path(args.out) if args.out else Path(args.dirs[0]) / "comparison"
    try:
        jobs = load_jobs(args.dirs)
        comparison = compare(
            jobs, metrics=args.metric or None,
            by=[key for item in args.by for key in item.split(",") if key] or None,
            seed_key=args.seed_key, baseline=args.baseline, at=args.at,
            order={key: values.split(",") for key, values in _pairs(args.order, "--order")},
            tags=args.tag, directions=dict(_pairs(args.direction, "--direction")),
            title=args.title or f"Runs in {', '.join(args.dirs)}")
        written = comparison.write(out)
    except CompareError as error:
        print(f"[infir] compare: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"[infir] compare: cannot write {error.filename or out}: {error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(comparison.markdown(), end="")
    print(f"[infir] compare: wrote {', '.join(map(str, written))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
