"""Mixture sampling: which domain window each training sequence comes from.

Sequence ``j`` of a run maps deterministically to (domain, window) from the
seed alone, so the sampler's whole state is one integer: the number of
sequences consumed. That makes resume exact, lets DDP ranks take disjoint
slices of the same global order, and keeps checkpoints tiny.

Domains are drawn i.i.d. by weight in blocks (vectorised); inside a domain,
windows are visited in a fresh seeded permutation each epoch over that domain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from infir.data.token_shards import TokenStream

_BLOCK = 8192


class MixturePlan:
    """Random-access map from global sequence index to (domain index, window index)."""

    def __init__(self, weights: Sequence[float], n_windows: Sequence[int], seed: int) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or len(w) == 0 or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"mixture weights must be non-negative with a positive sum, got {list(weights)}")
        if any(n <= 0 for n in n_windows):
            raise ValueError(f"every weighted domain needs at least one window, got {list(n_windows)}")
        self.probs = w / w.sum()
        self.n_windows = list(n_windows)
        self.seed = seed
        self._block_starts: list[np.ndarray] = [np.zeros(len(w), dtype=np.int64)]  # per-domain counts
        self._block_cache: tuple[int, np.ndarray, np.ndarray] | None = None
        self._perm_cache: dict[tuple[int, int], np.ndarray] = {}

    def _block(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        if self._block_cache is not None and self._block_cache[0] == b:
            return self._block_cache[1], self._block_cache[2]
        rng = np.random.default_rng([self.seed, b, 0x6D6978])
        domains = rng.choice(len(self.probs), size=_BLOCK, p=self.probs)
        occurrence = np.empty(_BLOCK, dtype=np.int64)
        for d in range(len(self.probs)):
            mask = domains == d
            occurrence[mask] = np.arange(int(mask.sum()))
        self._block_cache = (b, domains, occurrence)
        return domains, occurrence

    def _counts_before(self, b: int) -> np.ndarray:
        while len(self._block_starts) <= b:
            prev = len(self._block_starts) - 1
            domains, _ = self._block(prev)
            self._block_starts.append(self._block_starts[prev] + np.bincount(domains, minlength=len(self.probs)))
        return self._block_starts[b]

    def _permutation(self, domain: int, epoch: int) -> np.ndarray:
        key = (domain, epoch)
        if key not in self._perm_cache:
            if len(self._perm_cache) > 4 * len(self.probs):
                self._perm_cache.clear()
            rng = np.random.default_rng([self.seed, domain, epoch, 0x7065726D])
            self._perm_cache[key] = rng.permutation(self.n_windows[domain])
        return self._perm_cache[key]

    def locate(self, j: int) -> tuple[int, int]:
        b, offset = divmod(j, _BLOCK)
        before = self._counts_before(b)
        domains, occurrence = self._block(b)
        d = int(domains[offset])
        drawn = int(before[d] + occurrence[offset])
        epoch, position = divmod(drawn, self.n_windows[d])
        return d, int(self._permutation(d, epoch)[position])

    def domain_counts(self, n_sequences: int) -> np.ndarray:
        """How many of the first ``n_sequences`` come from each domain (for reporting epochs)."""
        b, offset = divmod(n_sequences, _BLOCK)
        counts = self._counts_before(b).copy()
        if offset:
            counts += np.bincount(self._block(b)[0][:offset], minlength=len(self.probs))
        return counts


class MixtureDataset(Dataset):
    """Training sequences: item ``j`` is the window the plan assigns to global sequence ``j``."""

    def __init__(self, streams: Sequence[TokenStream], plan: MixturePlan, length: int,
                 document_masking: bool = False) -> None:
        self.streams = list(streams)
        self.plan = plan
        self.length = length
        self.document_masking = document_masking

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, j: int) -> dict[str, torch.Tensor]:
        domain, window = self.plan.locate(j)
        return window_item(self.streams[domain], window, domain, self.document_masking)


class WindowDataset(Dataset):
    """Fixed evaluation windows of one stream (validation is the same every time).

    With ``byte_lengths`` (bytes per token id) each item also carries ``n_bytes``, the
    UTF-8 size of its targets, so NLL can be reported per byte, comparable across tokenizers.
    """

    def __init__(self, stream: TokenStream, domain: int, max_windows: int | None = None,
                 byte_lengths: np.ndarray | None = None, document_masking: bool = False) -> None:
        self.stream = stream
        self.domain = domain
        self.n = stream.n_windows if max_windows is None else min(stream.n_windows, max_windows)
        self.byte_lengths = byte_lengths
        self.document_masking = document_masking

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = window_item(self.stream, i, self.domain, self.document_masking)
        if self.byte_lengths is not None:
            item["n_bytes"] = torch.tensor(int(self.byte_lengths[item["labels"].numpy()].sum()))
        return item


def window_item(stream: TokenStream, index: int, domain: int, document_masking: bool = False) -> dict[str, torch.Tensor]:
    """Inputs and shifted targets of one window; with ``document_masking`` also its ``segment_ids`` (the document
    of each input position), from which the training module limits attention to each document and restarts
    positions (:mod:`infir.models.packed_attention`). A document's EOS keeps its target, the next document's
    first token: with the mask it is predicted from that document alone, as after a BOS."""
    tokens = torch.from_numpy(stream.window(index))
    item = {"input_ids": tokens[:-1], "labels": tokens[1:], "domain": torch.tensor(domain)}
    if document_masking:
        item["segment_ids"] = torch.from_numpy(stream.window_segments(index))
    return item


class GlobalOrderBatchSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches of the global sequence order, from a start offset.

    Micro-batch ``k`` of rank ``r`` (of ``world``) holds sequences
    ``start + (k * world + r) * batch_size + [0, batch_size)``: ranks read
    disjoint data, every optimizer step consumes a contiguous global slice, and
    resuming only needs ``start`` = sequences consumed so far.
    """

    def __init__(self, total_sequences: int, batch_size: int, start: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of size {world_size}")
        self.total = total_sequences
        self.batch_size = batch_size
        self.start = start
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        # The nominal epoch length from sequence 0, also after a resume: Lightning
        # restores its batch counter and compares it against this length.
        return self.total // (self.batch_size * self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        stride = self.batch_size * self.world_size
        if self.start % stride:
            raise ValueError(f"resume offset {self.start} is not a multiple of micro-batch x world size {stride}")
        for k in range(self.start // stride, len(self)):
            first = (k * self.world_size + self.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))
