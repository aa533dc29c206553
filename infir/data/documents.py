"""The one record type that flows through every data stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TRAIN, VALIDATION, HELDOUT_EVAL = "train", "validation", "heldout_eval"
SPLITS = (TRAIN, VALIDATION, HELDOUT_EVAL)


@dataclass
class Document:
    """A unit of text with provenance.

    ``source`` names where it came from (``stdlib``, ``champ``, ``procedural``),
    ``domain`` is the mixing axis (``code``, ``math``, ...). ``metadata`` holds
    anything a stage adds (split, scores, cluster ids, ``synthetic`` flag).
    """

    id: str
    text: str
    source: str
    domain: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def split(self) -> str:
        return self.metadata.get("split", TRAIN)

    @property
    def synthetic(self) -> bool:
        return bool(self.metadata.get("synthetic", False))
