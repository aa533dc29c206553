"""A synthesised SFT file as pre-training documents: synthetic data for an annealing mix (PAPER.md §2-§3).

Each conversation becomes one document, its user turns and replies joined by blank lines (no chat markup:
the anneal phase trains plain text), labelled ``synthetic`` so a pre-training mix refuses it unless it opts in
(``data_mix.allow_synthetic``). All documents are training documents; the mix's other sources supply
validation. A record without a user and an assistant turn is skipped, counted and logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from infir.data.documents import TRAIN, Document

log = logging.getLogger(__name__)


class SynthConversationsSource:
    """Documents from the ``messages`` records of ``path`` (``python -m infir.synth``'s ``sft.jsonl``)."""

    def __init__(self, path: str, name: str = "synth") -> None:
        self.path = Path(path).expanduser()
        self.name = name
        self.skipped: Counter = Counter()

    def _check_exists(self) -> None:
        if not self.path.is_file():
            raise FileNotFoundError(f"data_mix source {self.name}: no synthesised file at {self.path} "
                                    "(run python -m infir.synth first)")

    def fingerprint(self) -> str:
        self._check_exists()
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def documents(self) -> Iterator[Document]:
        from infir.records import read_rows

        self._check_exists()
        for index, row in enumerate(read_rows(self.path)):
            turns = row.get("messages") if isinstance(row, dict) else None
            texts = [t.get("content") for t in turns or []
                     if isinstance(t, dict) and t.get("role") in ("user", "assistant")]
            if len(texts) < 2 or not all(isinstance(t, str) and t.strip() for t in texts):
                self.skipped["no_user_and_assistant_turn"] += 1
                if sum(self.skipped.values()) <= 3:
                    log.warning("%s: skipping record %d of %s: it needs a user and an assistant turn", self.name,
                                index, self.path)
                continue
            yield Document(str(row.get("id", f"{self.name}/{index}")), "\n\n".join(texts), self.name,
                           str(row.get("domain", "math")), {"split": TRAIN, "synthetic": True,
                                                           "difficulty": row.get("difficulty")})
        if self.skipped:
            log.warning("%s: skipped %s", self.name, dict(self.skipped))
