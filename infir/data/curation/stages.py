"""Stage adapters the runner executes: a chain of filters, and the global dedup stage.

Each adapter holds only picklable configuration; heavy state (models, indexes)
is built lazily inside the worker that uses it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from infir.data.curation.base import DocumentFilter, StageOutput, run_filters
from infir.data.documents import Document

log = logging.getLogger(__name__)


class FilterStage:
    """A map stage applying ``filters`` in order (first objection names the drop reason)."""

    def __init__(self, name: str, filters: Sequence[DocumentFilter]) -> None:
        if not filters:
            raise ValueError(f"curation stage {name}: needs at least one filter")
        self.name = name
        self.filters = list(filters)

    def __call__(self, docs: list[Document]) -> StageOutput:
        return run_filters(self.filters, docs)


class MinHashDedupStage:
    """Global near-duplicate removal: per-shard signatures in the pool, one clustering over all shards.

    ``decide`` returns the survivor ids and cluster ids; ``apply`` drops non-survivors
    (``exact_duplicate`` / ``near_duplicate``) and tags kept cluster members.
    """

    def __init__(self, name: str, threshold: float = 0.8, num_perm: int = 112, ngram: int = 5, seed: int = 1,
                 fp_weight: float = 0.005, fn_weight: float = 0.995, tokenizer: str = "code_aware",
                 fn_rate: float | None = 0.05) -> None:
        self.name = name
        self.threshold, self.num_perm, self.ngram, self.seed = threshold, num_perm, ngram, seed
        self.fp_weight, self.fn_weight = fp_weight, fn_weight
        self.tokenizer, self.fn_rate = tokenizer, fn_rate

    def _deduplicator(self):
        from infir.data.curation.dedup import MinHashDeduplicator

        return MinHashDeduplicator(self.threshold, self.num_perm, self.ngram, self.seed, fp_weight=self.fp_weight,
                                   fn_weight=self.fn_weight, tokenizer=self.tokenizer, fn_rate=self.fn_rate)

    def summarise(self, docs: list[Document]) -> tuple[list[str], np.ndarray, list[int]]:
        from infir.data.curation.dedup import signatures_and_keys

        signatures, keys = signatures_and_keys([d.text for d in docs], self.num_perm, self.ngram, self.seed,
                                               tokenizer=self.tokenizer)
        return [d.id for d in docs], signatures, list(keys)

    def decide(self, summaries: Sequence[tuple[list[str], np.ndarray, list[int]]]):
        dedup = self._deduplicator()
        log.info("minhash dedup: threshold %.2f -> %d bands x %d rows", self.threshold, dedup.bands, dedup.rows)
        for ids, signatures, keys in summaries:
            dedup.add(ids, signatures, keys)
        return dedup

    def shard_decisions(self, decision, summaries: Sequence[tuple[list[str], np.ndarray, list[int]]]
                        ) -> list[ShardDedupDecision]:
        """Each shard's share of the clustering: only its own documents that are in a cluster. The whole
        deduplicator (signatures, LSH index) stays in the driver; tasks get O(their duplicates) bytes."""
        cluster_of, dropped = decision.cluster_of, decision.duplicates()
        out = []
        for ids, _, _ in summaries:
            clustered = [i for i in ids if i in cluster_of]
            out.append(ShardDedupDecision({i: cluster_of[i] for i in clustered},
                                          {i: dropped[i] for i in clustered if i in dropped}))
        return out

    def apply(self, docs: list[Document], decision) -> StageOutput:
        """Split a shard by its :class:`ShardDedupDecision` (or a whole ``MinHashDeduplicator``)."""
        return decision.apply(docs)


@dataclass
class ShardDedupDecision:
    """One shard's dedup verdicts: cluster id of each of its clustered documents, drop reason of non-survivors."""

    cluster_of: dict[str, str]
    dropped: dict[str, str]

    def apply(self, docs: list[Document]) -> StageOutput:
        from infir.data.curation.dedup import CLUSTER_KEY

        output = StageOutput()
        for doc in docs:
            cid = self.cluster_of.get(doc.id)
            if cid is not None:
                doc = dataclasses.replace(doc, metadata={**doc.metadata, CLUSTER_KEY: cid})
            output.add(doc, self.dropped.get(doc.id))
        return output
