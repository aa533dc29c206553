"""Math domain: CHAMP competition problems with step-by-step solutions (MIT licence).

The ``champ-dataset`` package ships 270 problems. A fixed, seeded split keeps a
held-out part for evaluation that never reaches training; the split is keyed by
problem id, so it is stable across package re-installs and config changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from importlib import resources

from infir.data.documents import HELDOUT_EVAL, TRAIN, VALIDATION, Document
from infir.data.splits import assign_split


def load_champ_problems() -> list[dict]:
    """The raw CHAMP problems as dicts with id, problem, steps, answer and category."""
    path = resources.files("champ_dataset") / "dataset_files" / "v0.json"
    raw = json.loads(path.read_text(encoding="utf-8"))["problems"]
    problems = []
    for pid, p in sorted(raw.items()):
        steps = [s["_text"] for s in p["solution"]["steps"]]
        problems.append({"id": pid, "problem": p["_text"].strip(), "steps": steps,
                         "answer": p["_answer"].strip(), "category": p["category"]})
    return problems


def format_solution(steps: list[str], answer: str) -> str:
    """MATH-style worked solution: steps, then the boxed final answer."""
    return " ".join(s.strip() for s in steps) + f"\nThe final answer is $\\boxed{{{answer}}}$."


class ChampSource:
    """CHAMP problems + solutions as math documents, with a seeded held-out split."""

    name = "champ"
    domain = "math"

    def __init__(self, heldout_fraction: float = 0.3, validation_fraction: float = 0.1,
                 seed: int = 0) -> None:
        self.heldout_fraction = heldout_fraction
        self.validation_fraction = validation_fraction
        self.seed = seed

    def split_of(self, problem_id: str) -> str:
        return assign_split(problem_id, f"champ-{self.seed}",
                            {HELDOUT_EVAL: self.heldout_fraction, VALIDATION: self.validation_fraction}, TRAIN)

    def fingerprint(self) -> str:
        from importlib.metadata import version

        key = f"{version('champ-dataset')}|{self.heldout_fraction}|{self.validation_fraction}|{self.seed}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def documents(self) -> Iterator[Document]:
        for p in load_champ_problems():
            text = f"Problem: {p['problem']}\nSolution: {format_solution(p['steps'], p['answer'])}"
            yield Document(id=f"champ/{p['id']}", text=text, source=self.name, domain=self.domain,
                           metadata={"split": self.split_of(p["id"]), "category": p["category"],
                                     "answer": p["answer"]})
