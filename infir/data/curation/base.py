"""What every curation stage shares: per-document filters and per-stage accounting.

A filter answers one question per document: the reason to drop it, or ``None`` to keep it.
Reasons are short snake_case strings (``gopher_min_words``) and become the funnel's
``dropped`` keys, so read + created = kept + sum(dropped) always holds (``created``: documents a
stage adds, such as the evolved instructions of SFT synthesis; 0 for every curation stage).
``counts`` are events inside a stage that are not documents (candidate replies, retries).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from infir.data.documents import Document


class DocumentFilter(ABC):
    """A per-document keep/drop rule. Must be picklable (it runs in worker processes)."""

    name: str = "filter"

    @abstractmethod
    def drop_reason(self, doc: Document) -> str | None:
        """Why ``doc`` should be dropped, or ``None`` to keep it."""


@dataclass
class StageOutput:
    kept: list[Document] = field(default_factory=list)
    dropped: list[tuple[Document, str]] = field(default_factory=list)
    created: int = 0  # documents among kept + dropped that the stage made (not read)
    counts: Counter = field(default_factory=Counter)

    def add(self, doc: Document, reason: str | None) -> None:
        """Keep ``doc`` (``reason`` is None) or drop it for ``reason``."""
        if reason is None:
            self.kept.append(doc)
        else:
            self.dropped.append((doc, reason))


@dataclass
class StageStats:
    """Counts of one stage: read + created = kept + sum(dropped.values())."""

    name: str
    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    created: int = 0
    counts: Counter = field(default_factory=Counter)

    def add(self, output: StageOutput, seconds: float) -> None:
        self.read += len(output.kept) + len(output.dropped) - output.created
        self.created += output.created
        self.kept += len(output.kept)
        self.dropped.update(reason for _, reason in output.dropped)
        self.counts.update(output.counts)
        self.seconds += seconds

    def merge(self, other: StageStats | dict) -> None:
        """Add another shard's stats (a StageStats or its ``to_dict`` form)."""
        other = other if isinstance(other, StageStats) else StageStats.from_dict(other)
        self.read += other.read
        self.created += other.created
        self.kept += other.kept
        self.dropped.update(other.dropped)
        self.counts.update(other.counts)
        self.seconds += other.seconds

    def check(self) -> None:
        if self.read + self.created != self.kept + sum(self.dropped.values()):
            raise AssertionError(f"stage {self.name}: read {self.read} + created {self.created} != kept "
                                 f"{self.kept} + dropped {dict(self.dropped)}")

    def to_dict(self) -> dict:
        record = {"name": self.name, "read": self.read, "kept": self.kept, "dropped": dict(self.dropped),
                  "seconds": round(self.seconds, 3)}
        if self.created:  # only stages that make documents say so: curation funnels stay as they were
            record["created"] = self.created
        if self.counts:
            record["counts"] = dict(sorted(self.counts.items()))
        return record

    @classmethod
    def from_dict(cls, record: dict) -> StageStats:
        return cls(record["name"], record["read"], record["kept"], Counter(record["dropped"]), record["seconds"],
                   record.get("created", 0), Counter(record.get("counts", {})))


def run_filters(filters: Sequence[DocumentFilter], docs: Iterable[Document]) -> StageOutput:
    """Apply filters in order; the first one that objects names the drop reason."""
    kept: list[Document] = []
    dropped: list[tuple[Document, str]] = []
    for doc in docs:
        for f in filters:
            reason = f.drop_reason(doc)
            if reason is not None:
                dropped.append((doc, reason))
                break
        else:
            kept.append(doc)
    return StageOutput(kept, dropped)


def in_sample(key: str, rate: float, salt: str = "") -> bool:
    """Deterministic Bernoulli(``rate``) draw for ``key``: the same document is in or out of a
    sample whatever the shard layout or worker count."""
    if rate >= 1.0:
        return True
    digest = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < rate


def threshold_reason(doc: Document, score: float, threshold: float, stage: str, key: str) -> str | None:
    """Record ``score`` under ``metadata[key]``; the drop reason if it is below ``threshold``."""
    doc.metadata[key] = round(score, 4)
    return None if score >= threshold else f"{stage}_{doc.domain}_below_threshold"
