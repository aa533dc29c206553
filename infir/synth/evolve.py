"""Instruction evolution (Evol-Instruct style, PAPER.md §4): rewrite each instruction with operations from
config, then eliminate failed rewrites, each for a counted reason.

In-depth operations make an instruction harder (add a constraint, deepen, concretise, ask for more reasoning
steps); in-breadth ones write a new instruction of the same domain. Every instruction gets
``per_instruction`` operations, chosen by a hash of its id (so the choice does not depend on the shard), and
``rounds`` applies the operations again to the survivors of the previous round. An evolved instruction keeps
its parent's domain and reply format but not its reference: a rewritten problem has a new answer, so only a
reference-free reward (a reward model, majority agreement) or generated tests can verify it.

Elimination (reasons as counted): ``no_information_gain`` (the rewrite says what the parent said: equal after
normalisation, or word-set Jaccard above ``max_similarity``), ``refusal``, ``degenerate`` (fewer than
``min_content_words`` words that are not stop words or punctuation), ``template_leak`` (the prompt's own
markers, e.g. "#Rewritten Prompt#"), ``answered_not_rewritten`` (the reply holds an answer's markers —
``####``, ``\boxed``, "final answer is", a code fence — so the generator solved the task instead of rewriting
it: what a small SFT model does with a rewrite prompt), ``too_long`` (over ``max_words``), plus the replies a
backend could not give (``request_failed``, ``empty_reply``, ``truncated``).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infir.data.curation.base import StageOutput
from infir.data.documents import Document
from infir.synth.backends.base import ChatRequest, RequestFailed
from infir.synth.backends.build import UsesBackend
from infir.synth.items import EVOLUTION, ORIGIN, PARENT, REFERENCE

DEPTH, BREADTH = "depth", "breadth"
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Short English function words: a rewrite made only of these (or of punctuation) says nothing.
STOP_WORDS = frozenset("""a an the and or but if then so of to in on at by for with from as is are was were be been
it its this that these those there here what which who whom how why when where do does did not no yes can
could would should will shall may might must i you he she we they me him her us them my your our their""".split())
DEFAULT_LEAK_MARKERS = ("#rewritten prompt#", "#given prompt#", "#created prompt#", "#new prompt#",
                        "rewritten prompt:", "given prompt:", "#instruction#")
DEFAULT_ANSWER_MARKERS = ("####", "\\boxed", "final answer is", "```")
DEFAULT_REFUSALS = (r"\bi(?:'m| am)? (?:sorry|unable|not able)\b", r"\bi can(?:not|'t)\b", r"\bas an ai\b",
                    r"\bi (?:won't|will not)\b")


@dataclass(frozen=True)
class EvolutionOp:
    """One rewrite operation: ``prompt`` holds ``{instruction}`` (and may hold ``{domain}``)."""

    name: str
    kind: str
    prompt: str

    def __post_init__(self) -> None:
        if self.kind not in (DEPTH, BREADTH):
            raise ValueError(f"evolution op {self.name}: kind must be {DEPTH} or {BREADTH}, got {self.kind!r}")
        if "{instruction}" not in self.prompt:
            raise ValueError(f"evolution op {self.name}: its prompt must contain {{instruction}}")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_jaccard(a: str, b: str) -> float:
    sa, sb = set(words(a)), set(words(b))
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


class EvolutionFilter:
    """Why an evolved instruction fails (a counted reason), or None when it is a usable new instruction."""

    def __init__(self, max_similarity: float = 0.9, min_content_words: int = 3, max_words: int = 300,
                 leak_markers: Sequence[str] = DEFAULT_LEAK_MARKERS,
                 refusal_patterns: Sequence[str] = DEFAULT_REFUSALS,
                 answer_markers: Sequence[str] = DEFAULT_ANSWER_MARKERS) -> None:
        self.max_similarity, self.min_content_words, self.max_words = max_similarity, min_content_words, max_words
        self.leak_markers = tuple(m.lower() for m in leak_markers)
        self.answer_markers = tuple(m.lower() for m in answer_markers)
        self.refusals = [re.compile(p, re.IGNORECASE) for p in refusal_patterns]

    def reason(self, evolved: str, parent: str) -> str | None:
        lowered = evolved.lower()
        if any(marker in lowered for marker in self.leak_markers):
            return "template_leak"
        if any(p.search(evolved) for p in self.refusals):
            return "refusal"
        if any(marker in lowered and marker not in parent.lower() for marker in self.answer_markers):
            return "answered_not_rewritten"
        tokens = words(evolved)
        if sum(w not in STOP_WORDS for w in tokens) < self.min_content_words:
            return "degenerate"
        if len(evolved.split()) > self.max_words:
            return "too_long"
        if " ".join(tokens) == " ".join(words(parent)) or word_jaccard(evolved, parent) > self.max_similarity:
            return "no_information_gain"
        return None


def _chosen_ops(doc_id: str, ops: Sequence[EvolutionOp], count: int, salt: str) -> list[EvolutionOp]:
    """``count`` distinct ops for ``doc_id``, ranked by a hash: stable whatever the shard layout."""
    ranked = sorted(ops, key=lambda op: hashlib.sha1(f"{salt}:{doc_id}:{op.name}".encode()).hexdigest())
    return ranked[:count]


class EvolveStage(UsesBackend):
    """Map stage that adds evolved instructions to each shard (parents are kept; children are ``created``)."""

    def __init__(self, name: str, generator: dict[str, Any], ops: Sequence[Mapping[str, str]],
                 per_instruction: int = 1, rounds: int = 1, max_tokens: int = 160, temperature: float = 0.7,
                 top_p: float = 0.95, seed: int = 0, system_prompt: str | None = None,
                 elimination: Mapping[str, Any] | None = None, reply_cache: str | None = None) -> None:
        self.name = name
        self.generator, self.reply_cache = dict(generator), reply_cache
        self.ops = [EvolutionOp(**op) for op in ops]
        if not self.ops:
            raise ValueError(f"synth stage {name}: needs at least one evolution op")
        if not 1 <= per_instruction <= len(self.ops):
            raise ValueError(f"synth stage {name}: per_instruction must be in 1..{len(self.ops)} (the ops), "
                             f"got {per_instruction}")
        if rounds < 1:
            raise ValueError(f"synth stage {name}: rounds must be >= 1, got {rounds}")
        self.per_instruction, self.rounds = per_instruction, rounds
        self.max_tokens, self.temperature, self.top_p, self.seed = max_tokens, temperature, top_p, seed
        self.system_prompt = system_prompt
        self.filter = EvolutionFilter(**dict(elimination or {}))

    def _request(self, doc: Document, op: EvolutionOp) -> ChatRequest:
        prompt = op.prompt.replace("{instruction}", doc.text).replace("{domain}", doc.domain)
        messages = ((("system", self.system_prompt),) if self.system_prompt else ()) + (("user", prompt),)
        return ChatRequest(f"{doc.id}:{op.name}", messages, 1, self.max_tokens, self.temperature, self.top_p,
                           self.seed)

    def __call__(self, docs: list[Document]) -> StageOutput:
        output = StageOutput(kept=list(docs))
        counts: Counter = Counter()
        parents = list(docs)
        for round_index in range(1, self.rounds + 1):
            jobs = [(doc, op) for doc in parents for op in _chosen_ops(doc.id, self.ops, self.per_instruction,
                                                                        f"{self.name}:{round_index}")]
            replies = self.ask([self._request(doc, op) for doc, op in jobs], counts)
            survivors = []
            for (parent, op), reply in zip(jobs, replies):
                child, reason = self._child(parent, op, reply, round_index)
                counts[f"evolved_{op.name}"] += 1
                output.created += 1
                if reason is None:
                    output.kept.append(child)
                    survivors.append(child)
                    counts[f"kept_{op.name}"] += 1
                else:
                    output.dropped.append((child, reason))
            parents = survivors
        output.counts = counts
        return output

    def _child(self, parent: Document, op: EvolutionOp, reply, round_index: int) -> tuple[Document, str | None]:
        metadata = {k: v for k, v in parent.metadata.items() if k != REFERENCE}
        metadata.update({ORIGIN: "evolved", PARENT: parent.id, EVOLUTION: op.name, "evolution_kind": op.kind,
                         "round": round_index})
        if isinstance(reply, RequestFailed):
            return Document(f"{parent.id}~{op.name}", "", parent.source, parent.domain, metadata), "request_failed"
        completion = reply[0] if reply else None
        text = completion.text.strip() if completion else ""
        child = Document(f"{parent.id}~{op.name}", text, parent.source, parent.domain, metadata)
        if not text:
            return child, "empty_reply"
        if completion.truncated:
            return child, "truncated"
        return child, self.filter.reason(text, parent.text)
