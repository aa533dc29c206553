"""Iteration helpers shared by the data modules: ``batched`` (Python 3.11 has no ``itertools.batched``) and
the shuffled-epochs batch iterator behind SFT and vision-language training."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from torch.utils.data import IterableDataset, get_worker_info

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


class ShuffledEpochs(IterableDataset):
    """Ready batches of ``items``, epoch after epoch, each epoch in its own (seed, epoch)-seeded order.

    The position is ``(epoch, index)`` with ``step = epoch * steps_per_epoch + index``; a resumed run calls
    ``resume(*position(micro_step))`` and continues with the exact next batch. With ``world_size`` > 1 rank
    ``r`` takes global batches ``r, r + W, ...``; the last ``n % W`` global batches of an epoch are left out
    so every rank runs the same number of steps. Shared by the text SFT packs and the vision-language
    samples, which differ only in what an item is and how a batch of them is collated.
    """

    def __init__(self, items: Sequence[T], collate: Callable[[list[T]], Any], seed: int, batch_size: int = 1,
                 epochs: int = 1, rank: int = 0, world_size: int = 1, namespace: str = "epochs") -> None:
        if batch_size < 1 or epochs < 1 or not 0 <= rank < world_size:
            raise ValueError(f"{type(self).__name__}: need batch_size >= 1, epochs >= 1, 0 <= rank < world_size; "
                             f"got {batch_size}, {epochs}, {rank}, {world_size}")
        self.items, self.collate = list(items), collate
        self.seed, self.batch_size, self.epochs = seed, batch_size, epochs
        self.rank, self.world_size, self.namespace = rank, world_size, namespace
        self.global_batches = -(-len(self.items) // batch_size)
        if self.global_batches < world_size:
            raise ValueError(f"{type(self).__name__}: {self.global_batches} batches per epoch cannot feed "
                             f"{world_size} ranks")
        self.start_step = 0

    @property
    def steps_per_epoch(self) -> int:
        """Steps (batches on this rank) per epoch."""
        return self.global_batches // self.world_size

    def __len__(self) -> int:
        """The batches the next iteration yields: every remaining step of every epoch. Lightning reads this as
        the length of its one epoch (the run is ``max_epochs=1``); one of our epochs' steps here made it stop
        after the first of them."""
        return self.total_steps() - self.start_step

    def total_steps(self, epochs: int | None = None) -> int:
        """``max_steps`` for ``epochs`` (default: the configured number)."""
        return self.steps_per_epoch * (self.epochs if epochs is None else epochs)

    def order(self, epoch: int) -> list[int]:
        """The item order of ``epoch``: a permutation that depends only on (namespace, seed, epoch)."""
        permutation = list(range(len(self.items)))
        random.Random(f"{self.namespace}:{self.seed}:{epoch}").shuffle(permutation)
        return permutation

    def batch_items(self, epoch: int, index: int) -> list[T]:
        """The items of step ``index`` of ``epoch`` on this rank."""
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(f"step {index} out of range: {self.steps_per_epoch} steps per epoch")
        start = (index * self.world_size + self.rank) * self.batch_size
        return [self.items[i] for i in self.order(epoch)[start : start + self.batch_size]]

    def batch(self, epoch: int, index: int) -> Any:
        return self.collate(self.batch_items(epoch, index))

    def position(self, step: int) -> tuple[int, int]:
        """``(epoch, index)`` of global step ``step``."""
        return divmod(step, self.steps_per_epoch)

    def resume(self, epoch: int, index: int = 0) -> None:
        """Start the next iteration at step ``index`` of ``epoch``. The trainer's step count is the position of
        record: Lightning fetches a batch ahead, so the dataset does not count consumed batches itself."""
        if epoch < 0 or not 0 <= index < self.steps_per_epoch:
            raise ValueError(f"{type(self).__name__}.resume: position ({epoch}, {index}) outside "
                             f"{self.steps_per_epoch} steps per epoch")
        self.start_step = epoch * self.steps_per_epoch + index

    def __iter__(self) -> Iterator[Any]:
        worker = get_worker_info()
        if worker is not None and worker.num_workers > 1:
            raise ValueError(f"{type(self).__name__} yields whole batches in order; use num_workers <= 1")
        for step in range(self.start_step, self.total_steps()):
            epoch, index = self.position(step)
            if index == 0 or step == self.start_step:
                order = self.order(epoch)
            start = (index * self.world_size + self.rank) * self.batch_size
            yield self.collate([self.items[i] for i in order[start : start + self.batch_size]])
