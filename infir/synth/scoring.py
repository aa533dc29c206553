"""Quality and difficulty scores and a domain label per sample (PAPER.md §4), by a judge prompt or by measures.

Methods (each a config choice, so they can be ablated):

* difficulty ``pass_rate``: the solve rate measured by rejection sampling (accepted / candidates; ``easy`` at
  or above ``easy_at``, ``hard`` at or below ``hard_at``, else ``medium``): what the teacher finds hard is
  hard. ``reference_steps``: the number of steps of the seed's worked solution (``easy`` at or below
  ``easy_steps``, ``hard`` at or above ``hard_steps``; evolved items carry their parent's): a property of the
  problem, for generators too weak for their solve rate to say much. ``judge``: the judge's word (the paper's
  route: a 70B model labelled ScaleQuest-Math from very easy to very hard, PAPER.md §4).
* quality ``heuristic``: the share of distinct word trigrams in the response (1 = no repetition, the failure
  small generators show most), halved for a one-line math answer with no worked steps. ``judge``: the judge's
  1-10 score / 10.
* domain ``inherit`` (the seed's domain) or ``judge`` (one of ``domains``).

The judge is asked once per sample with ``judge_prompt`` (``{instruction}``, ``{response}``, ``{domains}``)
and must answer with ``Quality: <1-10>``, ``Difficulty: <easy|medium|hard>`` and ``Domain: <name>`` lines; a
reply without the lines a method needs is a counted drop (``judge_unparseable``), as are failed requests and,
for ``reference_steps``, items without a worked solution (``no_difficulty``).
Samples below ``min_quality`` are dropped (``low_quality``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from infir.data.curation.base import StageOutput
from infir.data.documents import Document
from infir.synth.backends.base import ChatRequest, RequestFailed
from infir.synth.backends.build import UsesBackend
from infir.synth.evolve import words
from infir.synth.items import DIFFICULTY, PASS_RATE, QUALITY, RESPONSE, item_format

_QUALITY = re.compile(r"quality\s*[:=]\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_DIFFICULTY = re.compile(r"difficulty\s*[:=]\s*(easy|medium|hard)", re.IGNORECASE)
_DOMAIN = re.compile(r"domain\s*[:=]\s*([A-Za-z_-]+)", re.IGNORECASE)


def repetition_quality(response: str, fmt: str) -> float:
    tokens = words(response)
    trigrams = list(zip(tokens, tokens[1:], tokens[2:]))
    score = len(set(trigrams)) / len(trigrams) if trigrams else 0.0
    steps = [line for line in response.splitlines() if line.strip()]
    if fmt in ("gsm8k", "boxed") and len(steps) < 2:
        score /= 2
    return round(score, 4)


def pass_rate_difficulty(pass_rate: float, easy_at: float, hard_at: float) -> str:
    return "easy" if pass_rate >= easy_at else "hard" if pass_rate <= hard_at else "medium"


class ScoreStage(UsesBackend):
    """Map stage writing ``quality``, ``difficulty`` and ``domain`` (the Document's own field)."""

    def __init__(self, name: str, difficulty: str = "pass_rate", quality: str = "heuristic", domain: str = "inherit",
                 easy_at: float = 0.75, hard_at: float = 0.25, easy_steps: int = 2, hard_steps: int = 4,
                 min_quality: float = 0.0,
                 domains: Sequence[str] = ("math", "code"), generator: dict[str, Any] | None = None,
                 judge_prompt: str | None = None, max_tokens: int = 64, seed: int = 0,
                 reply_cache: str | None = None) -> None:
        for key, value, allowed in (("difficulty", difficulty, ("pass_rate", "reference_steps", "judge")),
                                    ("quality", quality, ("heuristic", "judge")),
                                    ("domain", domain, ("inherit", "judge"))):
            if value not in allowed:
                raise ValueError(f"synth stage {name}: {key} must be one of {list(allowed)}, got {value!r}")
        self.uses_judge = "judge" in (difficulty, quality, domain)
        if self.uses_judge and (generator is None or not judge_prompt):
            raise ValueError(f"synth stage {name}: a judge method needs generator and judge_prompt")
        if not 0 <= hard_at < easy_at <= 1:
            raise ValueError(f"synth stage {name}: need 0 <= hard_at < easy_at <= 1, got {hard_at}, {easy_at}")
        if not easy_steps < hard_steps:
            raise ValueError(f"synth stage {name}: need easy_steps < hard_steps, got {easy_steps}, {hard_steps}")
        self.easy_steps, self.hard_steps = easy_steps, hard_steps
        self.name = name
        self.difficulty, self.quality, self.domain = difficulty, quality, domain
        self.easy_at, self.hard_at, self.min_quality = easy_at, hard_at, min_quality
        self.domains = tuple(domains)
        self.generator, self.reply_cache = dict(generator or {}), reply_cache
        self.judge_prompt, self.max_tokens, self.seed = judge_prompt, max_tokens, seed

    def _judge(self, docs: Sequence[Document], counts: Counter) -> list[dict[str, Any] | str]:
        """Per doc, the parsed judgement or the drop reason."""
        requests = [ChatRequest(f"{doc.id}:judge", (("user", self.judge_prompt.replace("{instruction}", doc.text)
                                                      .replace("{response}", doc.metadata[RESPONSE])
                                                      .replace("{domains}", ", ".join(self.domains))),),
                                1, self.max_tokens, 0.0, 1.0, self.seed) for doc in docs]
        parsed: list[dict[str, Any] | str] = []
        for reply in self.ask(requests, counts):
            if isinstance(reply, RequestFailed) or not reply:
                parsed.append("request_failed")
                continue
            text = reply[0].text
            quality, difficulty, domain = _QUALITY.search(text), _DIFFICULTY.search(text), _DOMAIN.search(text)
            judgement = {"quality": min(float(quality.group(1)), 10.0) / 10 if quality else None,
                         "difficulty": difficulty.group(1).lower() if difficulty else None,
                         "domain": domain.group(1).lower() if domain and domain.group(1).lower() in self.domains
                         else None}
            needed = [k for k in ("quality", "difficulty", "domain") if getattr(self, k) == "judge"]
            parsed.append(judgement if all(judgement[k] is not None for k in needed) else "judge_unparseable")
        return parsed

    def _difficulty(self, doc: Document, judgement: dict[str, Any]) -> str | None:
        if self.difficulty == "judge":
            return judgement["difficulty"]
        if self.difficulty == "pass_rate":
            return pass_rate_difficulty(doc.metadata[PASS_RATE], self.easy_at, self.hard_at)
        steps = doc.metadata.get("steps")
        if not isinstance(steps, int):
            return None  # no worked reference solution to count (stdlib tasks)
        return "easy" if steps <= self.easy_steps else "hard" if steps >= self.hard_steps else "medium"

    def __call__(self, docs: list[Document]) -> StageOutput:
        output = StageOutput()
        counts: Counter = Counter()
        judgements = self._judge(docs, counts) if self.uses_judge else [{}] * len(docs)
        for doc, judgement in zip(docs, judgements):
            if isinstance(judgement, str):
                output.add(doc, judgement)
                continue
            response = doc.metadata[RESPONSE]
            quality = judgement["quality"] if self.quality == "judge" else \
                repetition_quality(response, item_format(doc))
            difficulty = self._difficulty(doc, judgement)
            if difficulty is None:
                output.add(doc, "no_difficulty")
                continue
            if self.domain == "judge":
                doc.domain = judgement["domain"]
            doc.metadata[QUALITY], doc.metadata[DIFFICULTY] = quality, difficulty
            counts[f"{doc.domain}_{difficulty}"] += 1
            output.add(doc, "low_quality" if quality < self.min_quality else None)
        output.counts = counts
        return output
