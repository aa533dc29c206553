"""What every benchmark task provides: its record format, prompts, stop strings, scoring.

A task never touches the model: the runner turns its prompts into generations (or option
log-likelihoods) and hands them back for scoring, so the same task runs from the CLI, inside the
training callback, and in tests with hand-written outputs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

GENERATE, LOGLIK = "generate", "loglik"
BASE, INSTRUCT = "base", "instruct"
THINK_SUFFIX = "Think step by step."  # the paper's instruct prompt style (PAPER.md §4)


@dataclass(frozen=True)
class ScoringContext:
    """What scoring may need besides outputs (the sandbox, for code tasks)."""

    sandbox: Any = None
    ks: tuple[int, ...] = (1,)


class Task(ABC):
    """One benchmark: ``records`` are evaluated, ``fewshot`` records become exemplars."""

    name: ClassVar[str]
    required_fields: ClassVar[tuple[str, ...]]
    stop: ClassVar[tuple[str, ...]] = ()
    needs_sandbox: ClassVar[bool] = False

    def __init__(self, records: Sequence[Mapping[str, Any]], fewshot: Sequence[Mapping[str, Any]] = (),
                 num_fewshot: int = 0, mode: str = BASE, method: str = GENERATE) -> None:
        if mode not in (BASE, INSTRUCT):
            raise ValueError(f"eval.mode must be '{BASE}' or '{INSTRUCT}', got {mode!r}")
        if method not in self.methods():
            raise ValueError(f"eval.tasks.{self.name}.method must be one of {self.methods()}, got {method!r}")
        if mode == BASE and num_fewshot > len(fewshot):
            raise ValueError(f"eval.tasks.{self.name}.num_fewshot={num_fewshot} but only {len(fewshot)} few-shot "
                             f"records are available")
        self.records = list(records)
        self.fewshot = list(fewshot)[:num_fewshot] if mode == BASE else []
        self.mode = mode
        self.method = method

    @classmethod
    def methods(cls) -> tuple[str, ...]:
        return (GENERATE,)

    @staticmethod
    def normalise(record: dict[str, Any]) -> dict[str, Any]:
        """Bring a raw public-format record to the shape this task reads; raise ValueError if unusable."""
        return record

    @abstractmethod
    def prompt(self, record: Mapping[str, Any]) -> str:
        """The few-shot (base-model) prompt; generation continues it."""

    @abstractmethod
    def instruction(self, record: Mapping[str, Any]) -> str:
        """The user message for instruct mode (zero-shot, chat template applied by the runner)."""

    def choices(self, record: Mapping[str, Any]) -> list[str]:
        """Continuations scored by log-likelihood (loglik tasks only)."""
        raise NotImplementedError(f"{self.name} has no log-likelihood scoring")

    @abstractmethod
    def score(self, records: Sequence[Mapping[str, Any]], outputs: Sequence[Sequence[str]],
              context: ScoringContext) -> list[dict[str, Any]]:
        """Per record: extracted answer(s), target and verdict fields (``correct`` or pass counts)."""

    def score_loglik(self, records: Sequence[Mapping[str, Any]],
                     logprobs: Sequence[Sequence[float]]) -> list[dict[str, Any]]:
        raise NotImplementedError(f"{self.name} has no log-likelihood scoring")

    def aggregate(self, scored: Sequence[Mapping[str, Any]], context: ScoringContext) -> dict[str, float]:
        """Default: mean of every boolean/number field named in ``metric_fields``."""
        return {metric: float(np.mean([s[metric] for s in scored])) for metric in self.metric_fields()}

    def metric_fields(self) -> tuple[str, ...]:
        return ("accuracy",)


def few_shot_block(exemplars: Sequence[str], query: str, header: str = "") -> str:
    """Header, exemplars separated by blank lines, then the query."""
    return header + "".join(f"{e}\n\n" for e in exemplars) + query
