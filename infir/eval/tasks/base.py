"""What every benchmark task provides: its record format, prompts, stop strings, scoring.

A task never touches the model: the runner turns its prompts into generations (or option
log-likelihoods) and hands them back for scoring, so the same task runs from the CLI, inside the
training callback, and in tests with hand-written outputs.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

GENERATE, LOGLIK = "generate", "loglik"
BASE, INSTRUCT = "base", "instruct"
THINK_SUFFIX = "Think step by step."  # the paper's instruct prompt style (PAPER.md §4)
# Few-shot samplers, as lm-evaluation-harness 0.4.x's (lm_eval/api/samplers.py): "first_n" takes the pool's first
# k rows in order; "random" is its default ContextSampler: one random.Random(seed) per task, k rows drawn without
# replacement for each evaluated record in record order, seeded with the harness's default fewshot seed.
FIRST_N, RANDOM = "first_n", "random"
SAMPLERS = (FIRST_N, RANDOM)
DEFAULT_FEWSHOT_SEED = 1234  # lm_eval.evaluator's default fewshot_random_seed


@dataclass(frozen=True)
class ScoringContext:
    """What scoring may need besides outputs (the sandbox, for code tasks)."""

    sandbox: Any = None
    ks: tuple[int, ...] = (1,)


class Task(ABC):
    """One benchmark: ``records`` are evaluated, rows of the ``fewshot`` pool become exemplars.

    Exemplars are chosen per record (:meth:`exemplars`) by the configured sampler, within the record's
    :meth:`fewshot_group` (MMLU: its subject), so every record gets the shots lm-eval would give it.
    """

    name: ClassVar[str]
    required_fields: ClassVar[tuple[str, ...]]
    stop: tuple[str, ...] = ()  # a class default; a task whose variants differ sets it per instance
    needs_sandbox: ClassVar[bool] = False
    variants: ClassVar[tuple[str, ...]] = ()  # prompt/scoring variants; the first is the default
    default_num_fewshot: ClassVar[int] = 0
    default_sampler: ClassVar[str] = FIRST_N
    fewshot_group_name: ClassVar[str] = "the task"  # what a few-shot group is, for error messages

    def __init__(self, records: Sequence[Mapping[str, Any]], fewshot: Sequence[Mapping[str, Any]] = (),
                 num_fewshot: int | None = None, mode: str = BASE, method: str = GENERATE,
                 sampler: str | None = None, fewshot_seed: int = DEFAULT_FEWSHOT_SEED,
                 variant: str | None = None) -> None:
        where = f"eval.tasks.{self.name}"
        if mode not in (BASE, INSTRUCT):
            raise ValueError(f"eval.mode must be '{BASE}' or '{INSTRUCT}', got {mode!r}")
        if method not in self.methods():
            raise ValueError(f"{where}.method must be one of {self.methods()}, got {method!r}")
        if variant is not None and variant not in self.variants:
            raise ValueError(f"{where}.variant must be one of {self.variants}, got {variant!r}"
                             if self.variants else f"{where}.variant: {self.name} has no variants")
        self.variant = variant or (self.variants[0] if self.variants else None)
        num_fewshot = self.default_num_fewshot if num_fewshot is None else int(num_fewshot)
        if num_fewshot < 0:
            raise ValueError(f"{where}.num_fewshot must be >= 0, got {num_fewshot}")
        sampler = sampler or self.default_sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"{where}.sampler must be one of {SAMPLERS}, got {sampler!r}")
        if mode == BASE and num_fewshot > len(fewshot):
            raise ValueError(f"{where}.num_fewshot={num_fewshot} but only {len(fewshot)} few-shot "
                             f"records are available")
        self.records = list(records)
        self.mode = mode
        self.method = method
        self.num_fewshot = num_fewshot if mode == BASE else 0  # instruct prompts are zero-shot
        self.sampler = sampler
        self.fewshot_seed = int(fewshot_seed)
        self.fewshot_pool = list(fewshot) if self.num_fewshot else []
        self.fewshot = self.fewshot_pool[:self.num_fewshot]  # the first-n exemplars, for tasks with one fixed set
        self._groups: dict[Any, list[Mapping[str, Any]]] = {}
        for row in self.fewshot_pool:
            self._groups.setdefault(self.fewshot_group(row), []).append(row)
        if self.num_fewshot:  # a group without enough exemplars fails now, not mid-run
            for record in {self.fewshot_group(r): r for r in self.records}.values():
                self._candidates(record)
        self._drawn = self._draw() if self.num_fewshot and sampler == RANDOM else {}

    def fewshot_group(self, record: Mapping[str, Any]) -> Any:
        """Exemplars for ``record`` come from pool rows of the same group (default: one group, the whole pool)."""
        return None

    def _candidates(self, record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        group = self.fewshot_group(record)
        candidates = self._groups.get(group, [])
        if len(candidates) < self.num_fewshot:
            raise ValueError(f"eval.tasks.{self.name}.fewshot: {len(candidates)} few-shot rows for "
                             f"{self.fewshot_group_name} {group!r}, but num_fewshot={self.num_fewshot}")
        return candidates

    def _draw(self) -> dict[int, list[Mapping[str, Any]]]:
        """lm-eval's default sampler: per group one ``Random(seed)``, ``rng.sample(pool, k)`` per record in order."""
        rngs: dict[Any, random.Random] = {}
        drawn = {}
        for record in self.records:
            group = self.fewshot_group(record)
            rng = rngs[group] = rngs.get(group) or random.Random(self.fewshot_seed)
            drawn[id(record)] = rng.sample(self._candidates(record), self.num_fewshot)
        return drawn

    def exemplars(self, record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The few-shot rows shown before ``record`` (empty in instruct mode or with 0 shots)."""
        if not self.num_fewshot:
            return []
        if self.sampler == FIRST_N:
            return self._candidates(record)[:self.num_fewshot]
        if id(record) not in self._drawn:
            raise ValueError(f"{self.name}: sampler '{RANDOM}' draws exemplars for this task's own records, "
                             "in order; got another record")
        return self._drawn[id(record)]

    def settings(self) -> dict[str, Any]:
        """Everything about this task's prompts that changes a number (recorded in results.json)."""
        return {"variant": self.variant, "mode": self.mode, "method": self.method, "num_fewshot": self.num_fewshot,
                "sampler": self.sampler if self.num_fewshot else None,
                "fewshot_seed": self.fewshot_seed if self.num_fewshot and self.sampler == RANDOM else None,
                "fewshot_pool": len(self.fewshot_pool), "records": len(self.records)}

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
