"""Source wrappers: take only some splits, or at most N documents per split, of another source."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from infir.data.documents import SPLITS, Document

T = TypeVar("T")


class SplitSelect:
    """Only the given splits of ``source`` — e.g. the clean validation text of a source whose
    training text enters the mix through a raw crawl instead."""

    def __init__(self, source: Any, splits: Sequence[str]) -> None:
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise ValueError(f"SplitSelect.splits: unknown splits {sorted(unknown)} (known: {SPLITS})")
        self.source = source
        self.splits = tuple(splits)
        self.name = f"{source.name}[{','.join(self.splits)}]"
        self.domain = source.domain

    def fingerprint(self) -> str:
        return f"{self.source.fingerprint()}|{self.splits}"

    def documents(self) -> Iterator[Document]:
        return (d for d in self.source.documents() if d.split in self.splits)


def keep_by_hash(items: Iterable[T], limit: int, identity: Callable[[T], str],
                 group: Callable[[T], str]) -> list[T]:
    """At most ``limit`` items per group, in their original order: those whose identity hashes lowest.

    A stable, seed-free sample that does not favour a source's first files (the stdlib's are alphabetical),
    and keeps the same items whatever else the source yields.
    """
    items = list(items)
    ranked: dict[str, list[tuple[str, int]]] = {}
    for index, item in enumerate(items):
        ranked.setdefault(group(item), []).append((hashlib.sha1(identity(item).encode()).hexdigest(), index))
    kept = {index for entries in ranked.values() for _, index in sorted(entries)[:limit]}
    return [item for index, item in enumerate(items) if index in kept]


class DocumentCap:
    """At most ``max_per_split`` documents of each split of ``source`` (``data_mix.max_documents_per_split``):
    a small run on any mix (debug=smoke) without a per-source size knob."""

    def __init__(self, source: Any, max_per_split: int) -> None:
        if not isinstance(max_per_split, int) or max_per_split < 1:
            raise ValueError(f"data_mix.max_documents_per_split must be a positive integer, got {max_per_split!r}")
        self.source = source
        self.max_per_split = max_per_split
        self.name = source.name
        self.domain = getattr(source, "domain", "mixed")

    def fingerprint(self) -> str:
        return f"{self.source.fingerprint()}|max_per_split={self.max_per_split}"

    def documents(self) -> Iterator[Document]:
        return iter(keep_by_hash(self.source.documents(), self.max_per_split, lambda d: d.id, lambda d: d.split))
