"""MATH (``problem``, ``solution`` with ``\\boxed{}``): 4-shot, boxed answer, symbolic equivalence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infir.eval.answers.math_equivalence import extract_math_answer, last_boxed, math_answers_equal
from infir.eval.tasks.base import THINK_SUFFIX, ScoringContext, Task, few_shot_block

# Our own four exemplars in the Minerva layout (Lewkowycz et al., 2022, use 4 shots); each ends
# in a boxed answer, which is what the extractor reads. Used unless a few-shot source is configured.
BUILTIN_EXEMPLARS = (
    {"problem": "What is the sum of the roots of $x^2 - 7x + 10 = 0$?",
     "solution": "For $x^2 + bx + c$ the roots sum to $-b$ (Vieta), so the sum is $7$. "
                 "Check: $x^2 - 7x + 10 = (x-2)(x-5)$ and $2 + 5 = 7$.\nThe final answer is $\\boxed{7}$."},
    {"problem": "Simplify $\\frac{3}{4} + \\frac{5}{6}$.",
     "solution": "With denominator $12$: $\\frac{9}{12} + \\frac{10}{12} = \\frac{19}{12}$.\n"
                 "The final answer is $\\boxed{\\frac{19}{12}}$."},
    {"problem": "How many positive divisors does $36$ have?",
     "solution": "$36 = 2^2 \\cdot 3^2$, so it has $(2+1)(2+1) = 9$ positive divisors.\n"
                 "The final answer is $\\boxed{9}$."},
    {"problem": "If $f(x) = 2x^2 - 3$, what is $f(-2)$?",
     "solution": "$f(-2) = 2 \\cdot (-2)^2 - 3 = 8 - 3 = 5$.\nThe final answer is $\\boxed{5}$."},
)


class CompetitionMath(Task):
    """Minerva-style "Problem:/Solution:" prompts; answers compared after normalisation, then with sympy."""

    name = "math"
    required_fields = ("problem", "solution")
    stop = ("\n\nProblem:", "Problem:")
    default_num_fewshot = 4

    def __init__(self, records: Sequence[Mapping[str, Any]], fewshot: Sequence[Mapping[str, Any]] = (),
                 num_fewshot: int | None = None, **kwargs: Any) -> None:
        super().__init__(records, fewshot or BUILTIN_EXEMPLARS, num_fewshot, **kwargs)

    @staticmethod
    def normalise(record: dict[str, Any]) -> dict[str, Any]:
        target = record.get("answer") or last_boxed(str(record["solution"]))
        if target is None:
            raise ValueError("solution has no \\boxed{} answer")
        return {**record, "target": str(target)}

    def prompt(self, record: Mapping[str, Any]) -> str:
        shots = [f"Problem:\n{r['problem']}\n\nSolution:\n{r['solution']}" for r in self.exemplars(record)]
        return few_shot_block(shots, f"Problem:\n{record['problem']}\n\nSolution:\n")

    def instruction(self, record: Mapping[str, Any]) -> str:
        return f"{record['problem']}\n{THINK_SUFFIX} Put the final answer in \\boxed{{}}."

    def score(self, records: Sequence[Mapping[str, Any]], outputs: Sequence[Sequence[str]],
              context: ScoringContext) -> list[dict[str, Any]]:
        scored = []
        for record, samples in zip(records, outputs):
            extracted = [extract_math_answer(o) for o in samples]
            correct = [e is not None and math_answers_equal(e, record["target"]) for e in extracted]
            scored.append({"target": record["target"], "extracted": extracted[0],
                           "accuracy": sum(correct) / len(samples)})
        return scored
