"""Local runner for curation recipes: a process pool over shards, resumable, content-addressed.

Layout of a run's work directory (``<cache>/curation/<key>/``)::

    00_read/shard_00000.jsonl.gz   + shard_00000.stats.json   (the stats file marks the shard done)
    01_<stage>/shard_00000.jsonl.gz + ...                       (one directory per stage, in order)
    manifest.json                                               (written last: the run is complete)

A killed run re-run with the same recipe and inputs skips every shard whose
stats file exists, so the result is identical to an uninterrupted run: no
document lost, none duplicated. Global stages (MinHash dedup) first compute
per-shard signatures in the pool, decide survivors once over all shards, then
filter each shard. Workers die with the driver, even when it is killed with -9;
the temp files a killed writer leaves are removed by the next run (``curate``).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tqdm.auto import tqdm

from infir.atomic_files import atomic_write_text
from infir.data.curation.base import StageOutput, StageStats
from infir.data.doc_io import read_jsonl_gz, write_jsonl_gz
from infir.data.documents import Document

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


@runtime_checkable
class MapStage(Protocol):
    """A stage that decides each shard on its own (filters, annotators, decontamination)."""

    name: str

    def __call__(self, docs: list[Document]) -> StageOutput: ...


@runtime_checkable
class GlobalStage(Protocol):
    """A stage whose decisions need every shard (dedup): summarise shards, decide, then apply."""

    name: str

    def summarise(self, docs: list[Document]) -> Any: ...

    def decide(self, summaries: Sequence[Any]) -> Any: ...

    def apply(self, docs: list[Document], decision: Any) -> StageOutput: ...


Stage = MapStage | GlobalStage


@dataclass
class CurationResult:
    output_shards: list[Path]
    funnel: list[dict[str, Any]]
    work_dir: Path

    def documents(self) -> list[Document]:
        return [doc for shard in self.output_shards for doc in read_jsonl_gz(shard)]


# --- worker side -------------------------------------------------------------------------------

_WORKER_STAGES: list[Stage] = []
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """End this worker when the driver dies, even by kill -9 (which runs none of the driver's cleanup and
    would leave idle workers holding their memory): the kernel's parent-death signal on Linux, else a
    thread that watches the parent pid."""
    if sys.platform.startswith("linux"):
        # The signal fires when the thread that spawned us ends: the pool spawns from the driver's calling
        # thread, which outlives the pool (``with ProcessPoolExecutor`` in ``_pool_map``).
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent_pid:  # the driver died before the signal was armed
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()


def _init_worker(stages: list[Stage], parent_pid: int | None = None) -> None:
    global _WORKER_STAGES
    if parent_pid is not None:
        die_with_parent(parent_pid)
    _WORKER_STAGES = stages


def write_stats(path: Path, stats: StageStats) -> None:
    atomic_write_text(path, json.dumps(stats.to_dict()))


def _finish_shard(stage_name: str, output: StageOutput, seconds: float, out_path: Path,
                  write_excluded: bool) -> None:
    stats = StageStats(stage_name)
    stats.add(output, seconds)
    stats.check()
    write_jsonl_gz(output.kept, out_path)
    if write_excluded and output.dropped:
        excluded = [Document(d.id, d.text, d.source, d.domain, {**d.metadata, "dropped_by": stage_name,
                                                                "drop_reason": reason})
                    for d, reason in output.dropped]
        write_jsonl_gz(excluded, out_path.with_name(out_path.name.replace("shard_", "excluded_")))
    write_stats(stats_path(out_path), stats)  # last: marks the shard done


def _map_task(args: tuple[int, str, str, bool]) -> None:
    stage_index, in_path, out_path, write_excluded = args
    stage = _WORKER_STAGES[stage_index]
    docs = read_jsonl_gz(Path(in_path))
    start = time.perf_counter()
    output = stage(docs)
    _finish_shard(stage.name, output, time.perf_counter() - start, Path(out_path), write_excluded)


def _summary_task(args: tuple[int, str]) -> tuple[Any, float]:
    stage_index, in_path = args
    stage = _WORKER_STAGES[stage_index]
    docs = read_jsonl_gz(Path(in_path))
    start = time.perf_counter()
    summary = stage.summarise(docs)
    return summary, time.perf_counter() - start


def _apply_task(args: tuple[int, str, str, bool, Any, float]) -> None:
    stage_index, in_path, out_path, write_excluded, decision, prior_seconds = args
    stage = _WORKER_STAGES[stage_index]
    docs = read_jsonl_gz(Path(in_path))
    start = time.perf_counter()
    output = stage.apply(docs, decision)
    _finish_shard(stage.name, output, prior_seconds + time.perf_counter() - start, Path(out_path), write_excluded)


def stats_path(shard: Path) -> Path:
    return shard.with_name(shard.name.replace(".jsonl.gz", ".stats.json"))


# --- driver ------------------------------------------------------------------------------------


class CurationRunner:
    """Runs stages in order over shards with ``workers`` processes (1 = in this process)."""

    def __init__(self, stages: Sequence[Stage], work_dir: Path, workers: int = 1, write_excluded: bool = False,
                 progress: bool = True) -> None:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"curation.stages: stage names must be unique, got {names}")
        for stage in stages:
            if not isinstance(stage, (MapStage, GlobalStage)):
                raise TypeError(f"curation stage {stage!r} is neither a map stage nor a global stage")
        self.stages = list(stages)
        self.work_dir = Path(work_dir)
        self.workers = max(1, int(workers))
        self.write_excluded = write_excluded
        self.progress = progress

    def _pool_map(self, fn: Callable, tasks: list, desc: str) -> list:
        if not tasks:
            return []
        if self.workers == 1:
            _init_worker(self.stages)
            return [fn(t) for t in tqdm(tasks, desc=desc, disable=not self.progress, leave=False)]
        with ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                 initargs=(self.stages, os.getpid())) as pool:
            try:
                return list(tqdm(pool.map(fn, tasks), total=len(tasks), desc=desc, disable=not self.progress,
                                 leave=False))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # a failed shard (a full disk): don't run the rest
                raise

    def run(self, read_shards: list[Path], read_stats: StageStats) -> CurationResult:
        """Curate ``read_shards`` (already ingested); ``read_stats`` accounts for the ingestion."""
        funnel = [read_stats.to_dict()]
        shards = list(read_shards)
        for index, stage in enumerate(self.stages, start=1):
            stage_dir = self.work_dir / f"{index:02d}_{stage.name}"
            stage_dir.mkdir(parents=True, exist_ok=True)
            outputs = [stage_dir / s.name for s in shards]
            pending = [i for i, out in enumerate(outputs) if not stats_path(out).is_file()]
            if isinstance(stage, GlobalStage):
                self._run_global(index - 1, stage, shards, outputs, pending)
            else:
                tasks = [(index - 1, str(shards[i]), str(outputs[i]), self.write_excluded) for i in pending]
                self._pool_map(_map_task, tasks, stage.name)
            stats = StageStats(stage.name)
            for out in outputs:
                stats.merge(json.loads(stats_path(out).read_text()))
            stats.check()
            if stats.read != funnel[-1]["kept"]:
                raise AssertionError(f"stage {stage.name} read {stats.read} documents but the previous stage "
                                     f"kept {funnel[-1]['kept']}")
            funnel.append(stats.to_dict())
            shards = outputs
        return CurationResult(shards, funnel, self.work_dir)

    def _run_global(self, stage_index: int, stage: GlobalStage, shards: list[Path], outputs: list[Path],
                    pending: list[int]) -> None:
        if not pending:
            return
        # The decision needs every shard's summary, finished shards included (cheap to recompute,
        # and recomputing keeps the decision identical to an uninterrupted run's).
        results = self._pool_map(_summary_task, [(stage_index, str(s)) for s in shards], f"{stage.name} (pass 1)")
        summaries = [r[0] for r in results]
        start = time.perf_counter()
        decision = stage.decide(summaries)
        decide_seconds = time.perf_counter() - start
        share = decide_seconds / len(shards)
        tasks = [(stage_index, str(shards[i]), str(outputs[i]), self.write_excluded, decision,
                  results[i][1] + share) for i in pending]
        self._pool_map(_apply_task, tasks, f"{stage.name} (pass 2)")


def format_funnel(funnel: list[dict[str, Any]], workers: int = 1) -> str:
    """A per-stage table: read, kept, dropped by reason, docs/s (per core, and wall-equivalent)."""
    lines = [f"{'stage':<22}{'read':>9}{'kept':>9}{'dropped':>9}{'docs/s/core':>13}  dropped by reason"]
    for row in funnel:
        dropped = sum(row["dropped"].values())
        rate = row["read"] / row["seconds"] if row["seconds"] > 0 else float("inf")
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(row["dropped"].items(), key=lambda kv: -kv[1]))
        lines.append(f"{row['name']:<22}{row['read']:>9}{row['kept']:>9}{dropped:>9}{rate:>13.0f}  {reasons}")
    return "\n".join(lines)
