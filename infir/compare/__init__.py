"""Compare the jobs of any sweep: one row per group of varying overrides, aggregated over seeds.

    from infir.compare import load_jobs, compare
    comparison = compare(load_jobs(["outputs/embedded_pretrain/multirun"]), metrics=["val/loss"])
    print(comparison.markdown()); comparison.plot("comparison.png"); comparison.best("val/loss")

The command line is ``python -m infir.compare DIR [DIR ...]`` (see ``infir/compare/__main__.py``).
Light on purpose: pyyaml and csv to read, matplotlib (imported when drawing) to plot; no torch.
"""

from infir.compare.aggregate import (Comparison, Group, MetricStats, Skip, compare, direction, expand_metrics,
                                     is_bookkeeping, varying_keys)
from infir.compare.runs import CompareError, Job, find_job_dirs, load_job, load_jobs

__all__ = ["Comparison", "CompareError", "Group", "Job", "MetricStats", "Skip", "compare", "direction",
           "expand_metrics", "find_job_dirs", "is_bookkeeping", "load_job", "load_jobs", "varying_keys"]
