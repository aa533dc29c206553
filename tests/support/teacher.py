"""A scripted teacher for synthesis tests: replies whose correctness is known in advance.

It knows every seed's reference (``from_seeds``), and for each instruction it answers correctly in the first
``k`` of its samples, where ``k = solved(instruction)`` is 0..4 from a hash: so the pass rate, the difficulty
label and the rejection outcome of each item are predictable. Evolution requests get a rewrite that adds a
sentence, except the scripted failures: a template leak, a refusal, or an unchanged task (by hash too).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from infir.data.documents import Document

# A rewrite adds 16 words around the task: far enough from its parent (word 5-gram Jaccard < 0.7) for dedup
EVOLVED_PREFIX = "In a new setting, "
EVOLVED_SUFFIX = " Explain each step, check every result twice, and only then state the final answer in full."
_TASK = re.compile(r"Task:\n(.*)\Z", re.DOTALL)


def _h(text: str, salt: str) -> int:
    return int(hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()[:8], 16)


def solved(instruction: str) -> int:
    """How many of the (4) samples the teacher gets right for ``instruction``."""
    return _h(instruction, "solved") % 5


def rewrite(task: str) -> str:
    return EVOLVED_PREFIX + task + EVOLVED_SUFFIX


def evolution_outcome(task: str) -> str:
    """What the teacher does with an evolution request: rewrite | leak | refuse | same."""
    return ("rewrite", "rewrite", "rewrite", "rewrite", "rewrite", "leak", "refuse", "same")[_h(task, "evolve") % 8]


class ScriptedTeacher:
    """``reply_fn`` for the loopback OpenAI server (``tests/support/openai_server.py``)."""

    def __init__(self, seeds: Iterable[Document]) -> None:
        self.by_instruction = {doc.text: doc for doc in seeds}

    def seed_of(self, instruction: str) -> Document | None:
        """The seed an instruction is, or was evolved from (:func:`rewrite`)."""
        return self.by_instruction.get(instruction.removeprefix(EVOLVED_PREFIX).removesuffix(EVOLVED_SUFFIX))

    def __call__(self, messages: list[dict], seed, index: int, temperature: float, max_tokens: int) -> tuple[str, str]:
        user = messages[-1]["content"]
        task = _TASK.search(user)
        if task:  # an evolution request
            parent = task.group(1)
            outcome = evolution_outcome(parent)
            text = {"rewrite": rewrite(parent), "leak": f"#Rewritten Prompt#: {parent}",
                    "refuse": "I'm sorry, I cannot help with that.", "same": parent}[outcome]
            return text, "stop"
        instruction = user.split("\nThink step by step.")[0].split("\nReply with the whole function")[0]
        doc = self.seed_of(instruction)
        if doc is None:
            return "I do not know.", "stop"
        right = index < solved(instruction)
        reference = doc.metadata["reference"]
        fmt = doc.metadata["format"]
        if fmt == "code":
            wrong = f"def {reference['entry_point']}(*args, **kwargs):\n    return None"
            body = reference["solution"] if right else wrong
            return f"Here it is.\n```python\n{body}\n```", "stop"
        answer = reference["answer"] if right else str(999990 + index)
        if fmt == "boxed":
            return ("We work it out step by step.\nSo the result follows.\n"
                    f"The final answer is $\\boxed{{{answer}}}$."), "stop"
        return f"We work it out step by step.\nSo the result follows.\n#### {answer}", "stop"
