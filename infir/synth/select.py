"""Selection by domain and difficulty, with quotas (PAPER.md §4: medium-and-harder math beat easy math).

A global stage: quotas need every sample. ``difficulties`` lists the levels a domain may contribute
(per domain, or ``"*"`` for every domain); ``max_per_domain`` caps a domain (null: no cap), so two arms of an
ablation can be made the same size. Within a domain the highest-quality samples are taken first, ties broken
by a hash of the id (not by shard order). Drops: ``difficulty_not_selected``, ``domain_not_selected``,
``over_domain_quota``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from infir.data.curation.base import StageOutput
from infir.data.documents import Document
from infir.synth.items import DIFFICULTIES, DIFFICULTY, QUALITY

Summary = list[tuple[str, str, str, float]]  # (id, domain, difficulty, quality)


class SelectStage:
    """Global stage keeping the samples the quotas choose."""

    def __init__(self, name: str, difficulties: Mapping[str, Sequence[str]],
                 max_per_domain: Mapping[str, int | None] | None = None) -> None:
        self.name = name
        self.difficulties = {domain: tuple(levels) for domain, levels in difficulties.items()}
        for domain, levels in self.difficulties.items():
            bad = sorted(set(levels) - set(DIFFICULTIES))
            if bad:
                raise ValueError(f"synth stage {name}: difficulties.{domain} has unknown level(s) {bad}; "
                                 f"levels are {list(DIFFICULTIES)}")
        self.max_per_domain = dict(max_per_domain or {})

    def _levels(self, domain: str) -> tuple[str, ...] | None:
        return self.difficulties.get(domain, self.difficulties.get("*"))

    def summarise(self, docs: list[Document]) -> Summary:
        return [(d.id, d.domain, d.metadata[DIFFICULTY], float(d.metadata[QUALITY])) for d in docs]

    def decide(self, summaries: Sequence[Summary]) -> dict[str, str | None]:
        """doc id -> None (selected) or the drop reason."""
        decision: dict[str, str | None] = {}
        by_domain: dict[str, list[tuple[float, str, str]]] = {}
        for doc_id, domain, difficulty, quality in (row for summary in summaries for row in summary):
            levels = self._levels(domain)
            if levels is None:
                decision[doc_id] = "domain_not_selected"
            elif difficulty not in levels:
                decision[doc_id] = "difficulty_not_selected"
            else:
                tie = hashlib.sha1(doc_id.encode()).hexdigest()
                by_domain.setdefault(domain, []).append((-quality, tie, doc_id))
        for domain, ranked in by_domain.items():
            cap = self.max_per_domain.get(domain, self.max_per_domain.get("*"))
            for rank, (_, _, doc_id) in enumerate(sorted(ranked)):
                decision[doc_id] = None if cap is None or rank < cap else "over_domain_quota"
        return decision

    def apply(self, docs: list[Document], decision: Mapping[str, Any]) -> StageOutput:
        output = StageOutput()
        for doc in docs:
            output.add(doc, decision[doc.id])
        return output
