"""One reward interface for every kind of rejection: a reward model, a reference answer, tests in the sandbox.

An item is a :class:`~infir.data.documents.Document` whose ``text`` is the instruction and whose metadata
holds ``candidates`` (the reply texts; ``infir.synth.items`` names the keys) and, where the seed had one,
``reference`` (``{"answer", ...}`` for math, ``{"tests", "solution", ...}`` for code). A reward gives one :class:`Verdict` per candidate; the
rejection stage keeps the highest-scoring accepted candidate (:func:`best_candidate`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from infir.data.documents import Document


@dataclass(frozen=True)
class Verdict:
    """A candidate's score and whether it may be kept; ``reason`` names a rejection (snake_case)."""

    score: float
    accepted: bool
    reason: str = ""


class Reward(ABC):
    """Judges the candidates of the items it applies to."""

    name: str = "reward"

    @abstractmethod
    def applies_to(self, doc: Document) -> bool:
        """Whether this reward can judge ``doc`` (e.g. it has a reference answer, or tests)."""

    @abstractmethod
    def judge(self, docs: Sequence[Document]) -> list[list[Verdict]]:
        """Per item, one verdict per entry of ``doc.metadata["candidates"]``, in order."""

    def fingerprint(self) -> dict:
        """What decides the verdicts (settings, model identity); part of the stage's cache key."""
        return {"name": self.name}


def best_candidate(verdicts: Sequence[Verdict]) -> int | None:
    """Index of the highest-scoring accepted candidate (the first on ties), or None if none is accepted."""
    best: int | None = None
    for index, verdict in enumerate(verdicts):
        if verdict.accepted and (best is None or verdict.score > verdicts[best].score):
            best = index
    return best
