"""Candidate replies: ``n`` step-by-step responses per instruction from the generator (PAPER.md §4).

The user turn is the instruction followed by its format's suffix (``prompts``: e.g. "Think step by step." for
word problems, plus the ``\\boxed{}`` hint for MATH-style ones), the wording the SFT data and the
instruct-mode eval use, so the synthesised conversations train the prompts the evaluation asks. Bad replies
are counted per candidate (``candidate_empty``, ``candidate_truncated``, ``request_failed``) and left out; an
instruction with no usable candidate is dropped (``no_usable_candidate``, or ``request_failed``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from infir.data.curation.base import StageOutput
from infir.data.documents import Document
from infir.synth.backends.base import ChatRequest, RequestFailed
from infir.synth.backends.build import UsesBackend
from infir.synth.items import CANDIDATES, FORMATS, PROMPT, item_format


def user_turn(doc: Document, suffixes: Mapping[str, str]) -> str:
    """The instruction as the user asks it: the text plus its format's suffix."""
    return doc.text + suffixes[item_format(doc)]


class CandidatesStage(UsesBackend):
    """Map stage: ``metadata["candidates"]`` = the usable replies of ``n`` samples."""

    def __init__(self, name: str, generator: dict[str, Any], suffixes: Mapping[str, str], n: int = 4,
                 max_tokens: int = 384, temperature: float = 0.7, top_p: float = 0.95, seed: int = 0,
                 system_prompt: str = "You are a helpful assistant.", reply_cache: str | None = None) -> None:
        self.name = name
        self.generator, self.reply_cache = dict(generator), reply_cache
        missing = sorted(set(FORMATS) - set(suffixes))
        if missing:
            raise ValueError(f"synth stage {name}: suffixes needs an entry for every format; missing {missing}")
        self.suffixes = dict(suffixes)
        self.n, self.max_tokens, self.temperature, self.top_p, self.seed = n, max_tokens, temperature, top_p, seed
        self.system_prompt = system_prompt

    def request(self, doc: Document) -> ChatRequest:
        messages = (("system", self.system_prompt), ("user", user_turn(doc, self.suffixes)))
        return ChatRequest(f"{doc.id}:candidates", messages, self.n, self.max_tokens, self.temperature, self.top_p,
                           self.seed)

    def __call__(self, docs: list[Document]) -> StageOutput:
        output = StageOutput()
        counts: Counter = Counter()
        replies = self.ask([self.request(doc) for doc in docs], counts)
        for doc, reply in zip(docs, replies):
            if isinstance(reply, RequestFailed):
                counts["request_failed"] += 1
                output.add(doc, "request_failed")
                continue
            usable = []
            for completion in reply:
                counts["candidates"] += 1
                if not completion.text.strip():
                    counts["candidate_empty"] += 1
                elif completion.truncated:
                    counts["candidate_truncated"] += 1
                else:
                    usable.append(completion.text.strip())
            counts["candidates_usable"] += len(usable)
            doc.metadata[CANDIDATES] = usable
            doc.metadata[PROMPT] = {"system": self.system_prompt, "user": user_turn(doc, self.suffixes)}
            output.add(doc, None if usable else "no_usable_candidate")
        output.counts = counts
        return output
