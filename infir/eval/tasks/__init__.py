"""The benchmark tasks, by the name used in ``conf/eval/*.yaml``."""

from infir.eval.tasks.base import BASE, GENERATE, INSTRUCT, LOGLIK, ScoringContext, Task
from infir.eval.tasks.code import MBPP, HumanEval
from infir.eval.tasks.competition_math import CompetitionMath
from infir.eval.tasks.gsm8k import GSM8K
from infir.eval.tasks.mmlu import MMLU

TASKS: dict[str, type[Task]] = {t.name: t for t in (GSM8K, CompetitionMath, MMLU, HumanEval, MBPP)}

__all__ = ["BASE", "GENERATE", "INSTRUCT", "LOGLIK", "TASKS", "ScoringContext", "Task"]
