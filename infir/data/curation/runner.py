"""The curation runner: a recipe's passes over shards, on any executor, resumable, content-addressed.

Layout of a run's work directory (``<cache>/curation/<key>/``)::

    00_read/shard_00000.jsonl.gz + shard_00000.stats.json   (the stats file marks the shard done)
    01_heuristic/...                                        (one directory per pass: see ``passes``)
    02_dedup+decontam/...
    manifest.json                                           (written last: the run is complete)

A killed run re-run with the same recipe and inputs skips every shard whose stats file exists, so the
result is identical to an uninterrupted run: no document lost, none duplicated. The executor
(``local`` processes or ``ray``) and the worker count change where tasks run, never what they write.
A global stage's decision is made once in the driver from the per-shard summary files (never from
documents) and travels to each task as that task's shards' share only, where the stage can split it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infir.data.curation.base import StageStats
from infir.data.curation.passes import (GlobalStage, MapStage, Pass, PassTask, Stage, plan_passes, read_summary,
                                        run_pass_task, stats_path, summary_path, write_stats)
from infir.data.curation.shard_files import JSONL_GZ, PARQUET, read_shard, shard_stem
from infir.data.documents import Document
from infir.data.execution import ExecutorSpec, LazyExecutor

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"

__all__ = ["MANIFEST", "CurationResult", "CurationRunner", "GlobalStage", "MapStage", "Stage", "format_funnel",
           "stats_path", "write_stats"]


@dataclass
class CurationResult:
    output_shards: list[Path]
    funnel: list[dict[str, Any]]
    work_dir: Path

    def documents(self) -> list[Document]:
        return [doc for shard in self.output_shards for doc in read_shard(shard)]


class CurationRunner:
    """Runs a recipe's stages in order over shards, as fused passes, on ``execution``'s executor."""

    def __init__(self, stages: Sequence[Stage], work_dir: Path, execution: ExecutorSpec | int = 1,
                 write_excluded: bool = False, progress: bool = True, fuse: bool = True) -> None:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"curation.stages: stage names must be unique, got {names}")
        self.stages = list(stages)
        self.passes = plan_passes(self.stages, fuse)
        self.work_dir = Path(work_dir)
        self.execution = execution if isinstance(execution, ExecutorSpec) else ExecutorSpec(workers=int(execution))
        self.write_excluded = write_excluded
        self.progress = progress
        self.executor = LazyExecutor(self.execution)  # a run whose every shard is done starts no pool, no Ray

    def run(self, read_shards: list[Path], read_stats: StageStats) -> CurationResult:
        """Curate ``read_shards`` (already ingested); ``read_stats`` accounts for the ingestion."""
        with self.executor:
            return self._run(list(read_shards), read_stats)

    def _run(self, shards: list[Path], read_stats: StageStats) -> CurationResult:
        funnel = [read_stats.to_dict()]
        stats: dict[str, StageStats] = {s.name: StageStats(s.name) for s in self.stages}
        decision_seconds: dict[str, float] = {}
        decisions: list[Any] = [None] * len(shards)
        for pass_ in self.passes:
            pass_dir = self.work_dir / pass_.dir_name
            pass_dir.mkdir(parents=True, exist_ok=True)
            suffix = JSONL_GZ if pass_ is self.passes[-1] else PARQUET  # what leaves the runner is jsonl.gz
            outputs = [pass_dir / f"{shard_stem(s)}{suffix}" for s in shards]
            self._run_pass(pass_, shards, outputs, decisions)
            for out in outputs:
                record = json.loads(stats_path(out).read_text())
                for row in record["stages"]:
                    stats[row["name"]].merge(row)
                if pass_.summarise is not None:
                    stats[pass_.summarise.name].seconds += record.get("summary_seconds", 0.0)
            if pass_.summarise is not None:
                decisions, decision_seconds[pass_.summarise.name] = self._decide(pass_.summarise, outputs)
            if pass_.writes_shards:
                shards = outputs
        for stage in self.stages:
            row = stats[stage.name]
            row.seconds += decision_seconds.get(stage.name, 0.0)
            row.check()
            if row.read != funnel[-1]["kept"]:
                raise AssertionError(f"stage {stage.name} read {row.read} documents but the previous stage "
                                     f"kept {funnel[-1]['kept']}")
            funnel.append(row.to_dict())
        return CurationResult(shards, funnel, self.work_dir)

    def _run_pass(self, pass_: Pass, shards: list[Path], outputs: list[Path], decisions: list[Any]) -> None:
        pending = [i for i, out in enumerate(outputs) if not stats_path(out).is_file()]
        if not pending:
            return
        n_tasks = min(self.execution.workers, len(pending))
        tasks = []
        for t in range(n_tasks):  # task t gets the pending shards t, t+N, ...: every task starts at once
            mine = pending[t::n_tasks]
            tasks.append(PassTask(pass_, [(str(shards[i]), str(outputs[i])) for i in mine],
                                  [decisions[i] for i in mine], self.write_excluded))
        start = time.perf_counter()
        ran = sum(self.executor.map(run_pass_task, tasks, pass_.dir_name))
        log.info("curation pass %s: %d shards in %.1f s on %d task(s)", pass_.dir_name, ran,
                 time.perf_counter() - start, n_tasks)

    def _decide(self, stage: GlobalStage, outputs: list[Path]) -> tuple[list[Any], float]:
        """The stage's decision from every shard's summary file (finished shards included, so a resumed run
        decides exactly as an uninterrupted one), split per shard where the stage can split it."""
        summaries = [read_summary(summary_path(out, stage.name)) for out in outputs]
        start = time.perf_counter()
        decision = stage.decide(summaries)
        split = getattr(stage, "shard_decisions", None)
        per_shard = list(split(decision, summaries)) if split is not None else [decision] * len(outputs)
        if len(per_shard) != len(outputs):
            raise AssertionError(f"stage {stage.name}: {len(per_shard)} shard decisions for {len(outputs)} shards")
        return per_shard, time.perf_counter() - start


def format_funnel(funnel: list[dict[str, Any]], workers: int = 1) -> str:
    """A per-stage table: read, kept, dropped by reason, docs/s (per CPU-second of the stage)."""
    lines = [f"{'stage':<22}{'read':>9}{'kept':>9}{'dropped':>9}{'docs/s/core':>13}  dropped by reason"]
    for row in funnel:
        dropped = sum(row["dropped"].values())
        rate = row["read"] / row["seconds"] if row["seconds"] > 0 else float("inf")
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(row["dropped"].items(), key=lambda kv: -kv[1]))
        lines.append(f"{row['name']:<22}{row['read']:>9}{row['kept']:>9}{dropped:>9}{rate:>13.0f}  {reasons}")
    return "\n".join(lines)
