"""What a synthesis item carries through the stages: a Document plus metadata keys every stage agrees on.

``Document.text`` is the instruction (what evolution rewrites, dedup and the judges read); the metadata keys
below are set by the stage named beside each. Formats say how a reply is prompted and checked: ``gsm8k``
(worked steps, then ``#### n``), ``boxed`` (MATH style ``\\boxed{}``), ``code`` (a ```python block).
"""

from __future__ import annotations

from infir.data.documents import Document

# metadata keys
REFERENCE = "reference"  # seeds: {"answer", "format"} (math) or {"solution", "tests", "entry_point"} (code)
FORMAT = "format"  # gsm8k | boxed | code: the reply format the prompt asks for
ORIGIN = "origin"  # seed | evolved
PARENT = "parent"  # evolved items: the id of the instruction they were rewritten from
EVOLUTION = "evolution"  # evolved items: the operation's name
CANDIDATES = "candidates"  # candidates stage: the usable reply texts
PROMPT = "prompt"  # candidates stage: {"system", "user"}, the turns the replies answer
RESPONSE = "response"  # rejection stage: the kept reply
REWARD = "reward"  # rejection stage: {"name", "score", "accepted", "of"}
PASS_RATE = "pass_rate"  # rejection stage: accepted candidates / candidates
QUALITY = "quality"  # scoring stage: 0..1
DIFFICULTY = "difficulty"  # scoring stage: easy | medium | hard
DIFFICULTIES = ("easy", "medium", "hard")
FORMATS = ("gsm8k", "boxed", "code")


def item_format(doc: Document) -> str:
    fmt = doc.metadata.get(FORMAT)
    if fmt not in FORMATS:
        raise ValueError(f"synthesis item {doc.id}: metadata.format must be one of {list(FORMATS)}, got {fmt!r}")
    return fmt
