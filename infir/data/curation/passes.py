"""A recipe as passes over the shards: consecutive map stages fused, each global stage cut in two.

A pass reads each of its input shards once, applies the decision of the global stage before it (if any),
runs its map stages in memory, computes the next global stage's per-shard summary on the result (if any)
and writes one output shard. So shards are written once per global stage plus once at the end, not once
per stage, and no intermediate output exists that nothing reads. ``fuse=False`` gives every stage its own
pass (and output directory) for inspection.

Per shard, a pass writes (in its directory ``NN_<stages>``)::

    shard_00000.parquet             the surviving documents (.jsonl.gz in the last pass; see shard_files;
                                    not written by a summary-only pass)
    shard_00000.<stage>.summary.pkl the next global stage's summary of them
    excluded_<stage>_00000.jsonl.gz documents each stage dropped, with why (write_excluded only)
    shard_00000.stats.json          per-stage counts and seconds: written last, it marks the shard done
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from infir.atomic_files import atomic_write_bytes, atomic_write_text
from infir.data.curation.base import StageOutput, StageStats
from infir.data.curation.shard_files import JSONL_GZ, read_shard, shard_stem, write_shard
from infir.data.doc_io import write_jsonl_gz
from infir.data.documents import Document


@runtime_checkable
class MapStage(Protocol):
    """A stage that decides each shard on its own (filters, annotators, decontamination)."""

    name: str

    def __call__(self, docs: list[Document]) -> StageOutput: ...


@runtime_checkable
class GlobalStage(Protocol):
    """A stage whose decisions need every shard (dedup): summarise shards, decide, then apply.

    A stage may also define ``shard_decisions(decision, summaries) -> list`` (one per shard): then each
    shard's task receives only its own part of the decision, not the whole of it.
    """

    name: str

    def summarise(self, docs: list[Document]) -> Any: ...

    def decide(self, summaries: Sequence[Any]) -> Any: ...

    def apply(self, docs: list[Document], decision: Any) -> StageOutput: ...


Stage = MapStage | GlobalStage


@dataclass
class Pass:
    """One read-transform-write sweep over every shard."""

    index: int
    apply: GlobalStage | None = None  # the global stage whose decision this pass applies first
    maps: list[MapStage] = field(default_factory=list)
    summarise: GlobalStage | None = None  # the global stage whose summary this pass computes at its end

    @property
    def stages(self) -> list[Stage]:
        """The stages whose output this pass writes, in order."""
        return ([self.apply] if self.apply is not None else []) + list(self.maps)

    @property
    def writes_shards(self) -> bool:
        return bool(self.stages)

    @property
    def dir_name(self) -> str:
        names = [s.name for s in self.stages] or [f"{self.summarise.name}.summaries"]
        return f"{self.index:02d}_{'+'.join(names)}"


def plan_passes(stages: Sequence[Stage], fuse: bool = True) -> list[Pass]:
    """Cut ``stages`` into passes: a global stage ends a pass (its summary) and starts the next (its apply)."""
    passes: list[Pass] = []
    current = Pass(1)
    for stage in stages:
        if isinstance(stage, GlobalStage):
            current.summarise = stage
            passes.append(current)
            current = Pass(current.index + 1, apply=stage)
        elif isinstance(stage, MapStage):
            if not fuse and current.stages:
                passes.append(current)
                current = Pass(current.index + 1)
            current.maps.append(stage)
        else:
            raise TypeError(f"curation stage {stage!r} is neither a map stage nor a global stage")
    if current.stages:
        passes.append(current)
    return passes


# --- per-shard files ------------------------------------------------------------------------------


def stats_path(shard: Path) -> Path:
    return shard.with_name(f"{shard_stem(shard)}.stats.json")


def summary_path(out_shard: Path, stage_name: str) -> Path:
    return out_shard.with_name(f"{shard_stem(out_shard)}.{stage_name}.summary.pkl")


def excluded_path(out_shard: Path, stage_name: str) -> Path:
    return out_shard.with_name(shard_stem(out_shard).replace("shard_", f"excluded_{stage_name}_") + JSONL_GZ)


def read_summary(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def write_stats(path: Path, stats: StageStats) -> None:
    """A single stage's stats file (the read stage's marker)."""
    atomic_write_text(path, json.dumps(stats.to_dict()))


def _write_excluded(output: StageOutput, stage_name: str, path: Path) -> None:
    excluded = [Document(d.id, d.text, d.source, d.domain, {**d.metadata, "dropped_by": stage_name,
                                                            "drop_reason": reason})
                for d, reason in output.dropped]
    write_jsonl_gz(excluded, path)


@dataclass
class PassTask:
    """One executor task: a pass over some shards (task i of N gets shards i, i+N, ...)."""

    pass_: Pass
    shards: list[tuple[str, str]]  # (input shard, output shard) of the unfinished shards only
    decisions: list[Any]  # the applied stage's decision for each shard (None when the pass applies none)
    write_excluded: bool = False


def run_pass_task(task: PassTask) -> int:
    """Run one task's shards in order; returns how many it ran (a retried task skips finished ones)."""
    ran = 0
    for (in_path, out_path), decision in zip(task.shards, task.decisions):
        out = Path(out_path)
        if stats_path(out).is_file():
            continue
        run_pass_on_shard(task.pass_, Path(in_path), out, decision, task.write_excluded)
        ran += 1
    return ran


def run_pass_on_shard(pass_: Pass, in_path: Path, out_path: Path, decision: Any, write_excluded: bool) -> None:
    docs = read_shard(in_path)
    records: list[dict] = []
    for stage in pass_.stages:
        start = time.perf_counter()
        output = stage.apply(docs, decision) if stage is pass_.apply else stage(docs)
        stats = StageStats(stage.name)
        stats.add(output, time.perf_counter() - start)
        stats.check()
        records.append(stats.to_dict())
        if write_excluded and output.dropped:
            _write_excluded(output, stage.name, excluded_path(out_path, stage.name))
        docs = output.kept
    record: dict[str, Any] = {"stages": records}
    if pass_.summarise is not None:
        start = time.perf_counter()
        summary = pass_.summarise.summarise(docs)
        atomic_write_bytes(summary_path(out_path, pass_.summarise.name),
                           pickle.dumps(summary, protocol=pickle.HIGHEST_PROTOCOL))
        record["summary_seconds"] = round(time.perf_counter() - start, 3)
    if pass_.writes_shards:
        write_shard(docs, out_path)
    atomic_write_text(stats_path(out_path), json.dumps(record))  # last: marks the shard done
