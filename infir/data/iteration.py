"""The shuffled-epochs batch iterator behind SFT and vision-language training (``batched`` lives in
``infir.data.batching``, free of torch)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from torch.utils.data import IterableDataset, get_worker_info

T = TypeVar("T")


class ShuffledEpochs(IterableDataset):
    """Ready batches of ``items``, epoch after epoch, each epoch in its own (seed, epoch)-seeded order.

    The unit is the whole run's sequence of *global* batches: epoch 0's batches, then epoch 1's, ... (an
    epoch's last batch may be short), numbered ``g = epoch * global_batches + index``. An optimizer step
    takes ``batches_per_step`` consecutive global batches (the single-process accumulation, default one per
    rank; a step may straddle two epochs), so the sequence is cut to whole steps. With ``world_size`` W,
    rank ``r`` takes global batches ``r, r + W, r + 2W, ...``: every rank runs the same number of whole steps,
    and step ``s`` reads global batches ``[s * batches_per_step, (s + 1) * batches_per_step)`` on any W, which
    makes one process's batch sequence the reference for every world size and a resume after ``s``
    optimizer steps (global batch ``s * batches_per_step``) exact also when the world size changed between.
    Shared by the text SFT packs and the vision-language samples, which differ only in what an item is and
    how a batch of them is collated.
    """

    def __init__(self, items: Sequence[T], collate: Callable[[list[T]], Any], seed: int, batch_size: int = 1,
                 epochs: int = 1, rank: int = 0, world_size: int = 1, namespace: str = "epochs",
                 batches_per_step: int | None = None) -> None:
        name = type(self).__name__
        batches_per_step = world_size if batches_per_step is None else batches_per_step  # default: 1 per rank
        if batch_size < 1 or epochs < 1 or batches_per_step < 1 or not 0 <= rank < world_size:
            raise ValueError(f"{name}: need batch_size >= 1, epochs >= 1, batches_per_step >= 1, "
                             f"0 <= rank < world_size; got {batch_size}, {epochs}, {batches_per_step}, {rank}, "
                             f"{world_size}")
        if batches_per_step % world_size:
            raise ValueError(f"{name}: an optimizer step of {batches_per_step} micro-batches cannot be split over "
                             f"{world_size} ranks (global batch / micro batch must be a multiple of the world size)")
        self.items, self.collate = list(items), collate
        self.seed, self.batch_size, self.epochs = seed, batch_size, epochs
        self.rank, self.world_size, self.namespace = rank, world_size, namespace
        self.batches_per_step = batches_per_step
        self.global_batches = -(-len(self.items) // batch_size)
        if self.optimizer_steps() < 1:
            raise ValueError(f"{name}: {self.global_batches * epochs} batches ({len(self.items)} items in batches of "
                             f"{batch_size}, {epochs} epochs) cannot make one optimizer step of {batches_per_step}")
        self.start_step = 0  # this rank's next batch (its k-th reads global batch k * world_size + rank)

    def for_rank(self, rank: int, world_size: int, batches_per_step: int) -> ShuffledEpochs:
        """The same batch sequence as rank ``rank`` of ``world_size`` reads it, in steps of ``batches_per_step``."""
        return ShuffledEpochs(self.items, self.collate, self.seed, batch_size=self.batch_size, epochs=self.epochs,
                              rank=rank, world_size=world_size, namespace=self.namespace,
                              batches_per_step=batches_per_step)

    def optimizer_steps(self, epochs: int | None = None) -> int:
        """Whole optimizer steps in ``epochs`` (default: the configured number): the run's ``max_steps``."""
        return self.global_batches * (self.epochs if epochs is None else epochs) // self.batches_per_step

    def total_steps(self, epochs: int | None = None) -> int:
        """This rank's batches over ``epochs`` (default: the configured number), cut to whole optimizer steps;
        with one process and ``batches_per_step=1`` every batch of every epoch."""
        return self.optimizer_steps(epochs) * self.batches_per_step // self.world_size

    @property
    def steps_per_epoch(self) -> int:
        """Batches this rank takes from each epoch at least (exactly, for one process): with ``global_batches``
        not a multiple of the world size, some epochs give a rank one more."""
        return self.global_batches // self.world_size

    def __len__(self) -> int:
        """This rank's batches of the whole run, counted from the start also after :meth:`resume`: Lightning
        reads it as the length of its one epoch (the run is ``max_epochs=1``) and compares the batch counter
        it restores from the checkpoint against it (the remaining count ended a run resumed early in its
        first half at ``max_epochs``, before ``max_steps``)."""
        return self.total_steps()

    def order(self, epoch: int) -> list[int]:
        """The item order of ``epoch``: a permutation that depends only on (namespace, seed, epoch)."""
        permutation = list(range(len(self.items)))
        random.Random(f"{self.namespace}:{self.seed}:{epoch}").shuffle(permutation)
        return permutation

    def global_batch_items(self, batch: int) -> list[T]:
        """The items of global batch ``batch`` (any rank's)."""
        epoch, index = self.position(batch)
        start = index * self.batch_size
        return [self.items[i] for i in self.order(epoch)[start : start + self.batch_size]]

    def rank_batches(self, epoch: int) -> list[int]:
        """The global batches of ``epoch`` this rank reads, in order."""
        first, end = epoch * self.global_batches, min((epoch + 1) * self.global_batches,
                                                      self.total_steps() * self.world_size)
        return list(range(first + (self.rank - first) % self.world_size, end, self.world_size))

    def batch_items(self, epoch: int, index: int) -> list[T]:
        """The items of this rank's ``index``-th batch of ``epoch``."""
        batches = self.rank_batches(epoch)
        if not 0 <= index < len(batches):
            raise IndexError(f"batch {index} out of range: rank {self.rank} reads {len(batches)} of epoch {epoch}")
        return self.global_batch_items(batches[index])

    def batch(self, epoch: int, index: int) -> Any:
        return self.collate(self.batch_items(epoch, index))

    def position(self, batch: int) -> tuple[int, int]:
        """``(epoch, index)`` of global batch ``batch``."""
        return divmod(batch, self.global_batches)

    def resume(self, epoch: int, index: int = 0) -> None:
        """Start the next iteration at global batch ``index`` of ``epoch`` (each rank at its own batch of the
        ``world_size`` that start there); a resumed run passes ``position(optimizer_steps * batches_per_step)``.
        The trainer's step count is the position of record: Lightning fetches a batch ahead, so the dataset
        does not count consumed batches itself."""
        batch = epoch * self.global_batches + index
        if epoch < 0 or not 0 <= index < self.global_batches or batch > self.total_steps() * self.world_size:
            raise ValueError(f"{type(self).__name__}.resume: position ({epoch}, {index}) outside the run's "
                             f"{self.epochs} epochs of {self.global_batches} batches")
        if batch % self.world_size:
            raise ValueError(f"{type(self).__name__}.resume: global batch {batch} is not a multiple of the world "
                             f"size {self.world_size} (resume at an optimizer step: steps x {self.batches_per_step})")
        self.start_step = batch // self.world_size

    def resume_after(self, optimizer_steps: int) -> None:
        """Continue after ``optimizer_steps`` whole steps: at global batch ``optimizer_steps * batches_per_step``
        on any world size."""
        if not 0 <= optimizer_steps <= self.optimizer_steps():
            raise ValueError(f"{type(self).__name__}: cannot resume after {optimizer_steps} optimizer steps of a "
                             f"{self.optimizer_steps()}-step run")
        self.resume(*self.position(optimizer_steps * self.batches_per_step))

    def __iter__(self) -> Iterator[Any]:
        worker = get_worker_info()
        if worker is not None and worker.num_workers > 1:
            raise ValueError(f"{type(self).__name__} yields whole batches in order; use num_workers <= 1")
        epoch, order = None, []
        for step in range(self.start_step, self.total_steps()):
            batch_epoch, index = self.position(step * self.world_size + self.rank)
            if batch_epoch != epoch:
                epoch, order = batch_epoch, self.order(batch_epoch)
            start = index * self.batch_size
            yield self.collate([self.items[i] for i in order[start : start + self.batch_size]])
