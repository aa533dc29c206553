"""GSM8K (``question``, ``answer`` ending ``#### n``): chain-of-thought, strict and flexible match."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infir.eval.answers.gsm8k import extract_gsm8k_flexible, extract_gsm8k_strict, gsm8k_target
from infir.eval.tasks.base import THINK_SUFFIX, ScoringContext, Task, few_shot_block


class GSM8K(Task):
    """The lm-evaluation-harness layout ("Question: ...\\nAnswer: <reasoning> #### n"), k-shot from train.

    ``strict_accuracy`` needs the ``#### n`` marker the exemplars teach; ``flexible_accuracy`` takes
    the last number of the output (what instruct models, which never saw the marker, are scored by).
    """

    name = "gsm8k"
    required_fields = ("question", "answer")
    stop = ("Question:", "\n\n")

    @staticmethod
    def normalise(record: dict[str, Any]) -> dict[str, Any]:
        return {**record, "target": gsm8k_target(str(record["answer"]))}

    def prompt(self, record: Mapping[str, Any]) -> str:
        shots = [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in self.fewshot]
        return few_shot_block(shots, f"Question: {record['question']}\nAnswer:")

    def instruction(self, record: Mapping[str, Any]) -> str:
        return f"{record['question']}\n{THINK_SUFFIX}"

    def score(self, records: Sequence[Mapping[str, Any]], outputs: Sequence[Sequence[str]],
              context: ScoringContext) -> list[dict[str, Any]]:
        scored = []
        for record, samples in zip(records, outputs):
            strict = [extract_gsm8k_strict(o) for o in samples]
            flexible = [extract_gsm8k_flexible(o) for o in samples]
            target = record["target"]
            scored.append({"target": target, "extracted_strict": strict[0], "extracted_flexible": flexible[0],
                           "strict_accuracy": sum(s == target for s in strict) / len(samples),
                           "flexible_accuracy": sum(f == target for f in flexible) / len(samples)})
        return scored

    def metric_fields(self) -> tuple[str, ...]:
        return ("strict_accuracy", "flexible_accuracy")
