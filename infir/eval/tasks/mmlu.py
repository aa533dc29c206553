"""MMLU (``question``, ``choices``, ``answer``, ``subject``): 5-shot, by option likelihood or by generation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from infir.eval.answers.choice import extract_choice_letter
from infir.eval.tasks.base import GENERATE, LOGLIK, THINK_SUFFIX, ScoringContext, Task, few_shot_block

LETTERS = "ABCDEFGHIJ"


def _subject(record: Mapping[str, Any]) -> str:
    return str(record.get("subject") or "general knowledge").replace("_", " ")


class MMLU(Task):
    """Hendrycks et al.'s prompt as lm-eval's ``mmlu``: exemplars are the first ``num_fewshot`` few-shot rows of
    the question's own subject, in file order (a subject with fewer rows is an error). ``loglik`` scores " A".." D"
    after "Answer:" and normalises with a softmax over the options (PAPER.md §2.3: P(c_i) = e^{s_i} / Σ_j e^{s_j});
    ``generate`` reads the letter."""

    name = "mmlu"
    required_fields = ("question", "choices", "answer")
    stop = ("\n\n",)
    fewshot_group_name = "subject"

    @classmethod
    def methods(cls) -> tuple[str, ...]:
        return (LOGLIK, GENERATE)

    @staticmethod
    def normalise(record: dict[str, Any]) -> dict[str, Any]:
        choices = [str(c) for c in record["choices"]]
        if not 2 <= len(choices) <= len(LETTERS):
            raise ValueError(f"needs 2-{len(LETTERS)} choices, got {len(choices)}")
        answer = record["answer"]
        index = LETTERS.index(answer.strip().upper()) if isinstance(answer, str) and not answer.isdigit() \
            else int(answer)
        if not 0 <= index < len(choices):
            raise ValueError(f"answer {answer!r} is not one of {len(choices)} choices")
        return {**record, "choices": choices, "answer": index}

    def _block(self, record: Mapping[str, Any], with_answer: bool) -> str:
        lines = [str(record["question"]).strip()]
        lines += [f"{LETTERS[i]}. {c}" for i, c in enumerate(record["choices"])]
        answer = f" {LETTERS[record['answer']]}" if with_answer else ""
        return "\n".join(lines) + f"\nAnswer:{answer}"

    def fewshot_group(self, record: Mapping[str, Any]) -> str:
        """lm-eval runs one task per subject, with that subject's dev rows as exemplars."""
        return _subject(record)

    def prompt(self, record: Mapping[str, Any]) -> str:
        subject = _subject(record)
        shots = self.exemplars(record)
        header = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
        return few_shot_block([self._block(r, True) for r in shots], self._block(record, False), header)

    def instruction(self, record: Mapping[str, Any]) -> str:
        options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(record["choices"]))
        return (f"{record['question']}\n{options}\n{THINK_SUFFIX} "
                f"End with \"The answer is X\" where X is the letter of the correct option.")

    def choices(self, record: Mapping[str, Any]) -> list[str]:
        return [f" {LETTERS[i]}" for i in range(len(record["choices"]))]

    def score_loglik(self, records: Sequence[Mapping[str, Any]],
                     logprobs: Sequence[Sequence[float]]) -> list[dict[str, Any]]:
        scored = []
        for record, scores in zip(records, logprobs):
            s = np.asarray(scores, dtype=np.float64)
            probs = np.exp(s - s.max())
            probs /= probs.sum()
            chosen = int(np.argmax(s))
            scored.append({"target": LETTERS[record["answer"]], "extracted": LETTERS[chosen],
                           "accuracy": float(chosen == record["answer"]),
                           "prob_correct": float(probs[record["answer"]]),
                           "option_probs": [round(float(p), 6) for p in probs]})
        return scored

    def score(self, records: Sequence[Mapping[str, Any]], outputs: Sequence[Sequence[str]],
              context: ScoringContext) -> list[dict[str, Any]]:
        scored = []
        for record, samples in zip(records, outputs):
            letters = [extract_choice_letter(o, len(record["choices"])) for o in samples]
            target = LETTERS[record["answer"]]
            scored.append({"target": target, "extracted": letters[0],
                           "accuracy": sum(letter == target for letter in letters) / len(samples)})
        return scored

    def metric_fields(self) -> tuple[str, ...]:
        return ("accuracy", "prob_correct") if self.method == LOGLIK else ("accuracy",)
