"""Rewards that verify a reply's final answer: against the seed's reference, or by agreement among candidates.

Answers are read as the eval reads them (``infir.eval.answers``): GSM8K's strict ``#### n`` span compared as
normalised numbers, and MATH's last ``\\boxed{}`` compared by :func:`math_answers_equal`. Strict, because the
kept reply becomes a training target: a right answer in the wrong format would teach the wrong format.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from infir.data.documents import Document
from infir.synth.items import CANDIDATES, REFERENCE, item_format
from infir.synth.rewards.base import Reward, Verdict

MATH_FORMATS = ("gsm8k", "boxed")


def final_answer(reply: str, fmt: str) -> str | None:
    """The reply's final answer in ``fmt`` (normalised for gsm8k), or None when it gives none."""
    if fmt == "gsm8k":
        from infir.eval.answers.gsm8k import extract_gsm8k_strict

        return extract_gsm8k_strict(reply)
    from infir.eval.answers.math_equivalence import extract_math_answer

    return extract_math_answer(reply)


def answers_equal(predicted: str, target: str, fmt: str) -> bool:
    if fmt == "gsm8k":
        from infir.eval.answers.gsm8k import normalise_number

        return predicted == normalise_number(target)
    from infir.eval.answers.math_equivalence import math_answers_equal

    return math_answers_equal(predicted, target)


class ReferenceAnswerReward(Reward):
    """Accept a candidate whose final answer equals the seed's reference answer (score 1), else reject."""

    name = "reference_answer"

    def applies_to(self, doc: Document) -> bool:
        return item_format(doc) in MATH_FORMATS and bool((doc.metadata.get(REFERENCE) or {}).get("answer"))

    def judge(self, docs: Sequence[Document]) -> list[list[Verdict]]:
        verdicts = []
        for doc in docs:
            fmt, target = item_format(doc), doc.metadata[REFERENCE]["answer"]
            row = []
            for reply in doc.metadata[CANDIDATES]:
                answer = final_answer(reply, fmt)
                if answer is None:
                    row.append(Verdict(0.0, False, "no_final_answer"))
                elif answers_equal(answer, target, fmt):
                    row.append(Verdict(1.0, True))
                else:
                    row.append(Verdict(0.0, False, "wrong_answer"))
            verdicts.append(row)
        return verdicts


class MajorityAnswerReward(Reward):
    """Reference-free verification by self-consistency: accept the candidates that give the most common final
    answer when at least ``min_votes`` of them agree and they are at least ``min_share`` of all candidates.

    For evolved math instructions, which have no reference; score = the answer's share.
    """

    name = "majority_answer"

    def __init__(self, min_votes: int = 2, min_share: float = 0.5, only_without_reference: bool = True) -> None:
        if min_votes < 2:
            raise ValueError(f"majority_answer: min_votes must be >= 2 (one vote agrees with itself), got {min_votes}")
        self.min_votes, self.min_share, self.only_without_reference = min_votes, min_share, only_without_reference

    def fingerprint(self) -> dict:
        return {"name": self.name, "min_votes": self.min_votes, "min_share": self.min_share}

    def applies_to(self, doc: Document) -> bool:
        has_reference = bool((doc.metadata.get(REFERENCE) or {}).get("answer"))
        return item_format(doc) in MATH_FORMATS and not (self.only_without_reference and has_reference)

    def judge(self, docs: Sequence[Document]) -> list[list[Verdict]]:
        verdicts = []
        for doc in docs:
            fmt, replies = item_format(doc), doc.metadata[CANDIDATES]
            answers = [final_answer(reply, fmt) for reply in replies]
            votes = Counter(a for a in answers if a is not None)
            top, count = votes.most_common(1)[0] if votes else (None, 0)
            share = count / len(replies) if replies else 0.0
            agreed = count >= self.min_votes and share >= self.min_share
            row = []
            for answer in answers:
                if answer is None:
                    row.append(Verdict(0.0, False, "no_final_answer"))
                elif agreed and answer == top:
                    row.append(Verdict(share, True))
                else:
                    row.append(Verdict(share if answer == top else 0.0, False, "no_majority"))
            verdicts.append(row)
        return verdicts
