"""``batched`` (Python 3.11 has no ``itertools.batched``), in a module that imports nothing heavy: curation
workers use it, and importing it from the torch data modules made every spawned worker import torch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter), without materialising ``items``."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
