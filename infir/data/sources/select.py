"""Source wrappers: take only some splits of another source."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from infir.data.documents import SPLITS, Document


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
