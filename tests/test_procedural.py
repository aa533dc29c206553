"""Behaviour the training/eval pipelines rely on from the procedural word-problem source."""

from __future__ import annotations

import random
import re
from fractions import Fraction

import pytest

from infir.data.sources import procedural

from infir.data.documents import HELDOUT_EVAL, TRAIN, VALIDATION
from infir.data.sources.procedural import (
    Draft,
    ProblemGenerationError,
    Resample,
    Template,
    WordProblem,
    arithmetic_is_consistent,
    draw_verified,
    generate_problems,
    normalise_question,
    split_problems,
)

N = 500


@pytest.fixture(scope="module")
def problems() -> list[WordProblem]:
    return generate_problems(seed=7, n=N)


def of_kind(problems: list[WordProblem], kind: str) -> list[WordProblem]:
    found = [p for p in problems if p.kind == kind]
    assert found, f"no {kind} problems in the sample"
    return found


def test_same_seed_same_problems_and_different_seed_differs() -> None:
    first = generate_problems(seed=3, n=40)
    assert first == generate_problems(seed=3, n=40)
    assert generate_problems(seed=3, n=10) == first[:10]
    other = generate_problems(seed=4, n=40)
    assert [p.question for p in first] != [p.question for p in other]


def test_generation_ignores_global_random_state() -> None:
    random.seed(1)
    before = generate_problems(seed=11, n=20)
    random.seed(2)
    assert generate_problems(seed=11, n=20) == before


def test_gsm8k_answer_line_parses_and_matches(problems: list[WordProblem]) -> None:
    assert len(problems) == N
    for p in problems:
        *steps, last = p.solution.split("\n")
        match = re.fullmatch(r"#### (-?\d+)", last)
        assert match, p.solution
        assert int(match.group(1)) == p.answer and isinstance(p.answer, int)
        assert tuple(steps) == p.steps and 2 <= len(steps) <= 6
        assert p.to_gsm8k() == {"question": p.question, "answer": p.solution}


def test_final_step_states_the_answer(problems: list[WordProblem]) -> None:
    for p in problems:
        assert str(p.answer) in re.findall(r"\d+", p.steps[-1]), p.steps[-1]
        assert arithmetic_is_consistent(p), p.solution


def test_at_least_eight_kinds_appear(problems: list[WordProblem]) -> None:
    assert len({p.kind for p in problems}) >= 8


def test_linear_equation_answers_solve_the_equation_in_the_question(problems: list[WordProblem]) -> None:
    for p in of_kind(problems, "linear_equation"):
        a, var, sign, b, c = re.search(r"(\d+)([a-z]) ([+−-]) (\d+) = (\d+)", p.question).groups()
        offset = int(b) if sign == "+" else -int(b)
        assert Fraction(int(c) - offset, int(a)) == p.answer, p.question
        assert p.steps[-1].startswith("Divide") and f"{var} = " in p.steps[-1]


def test_discount_tax_answers_match_the_question(problems: list[WordProblem]) -> None:
    for p in of_kind(problems, "discount_tax"):
        price = int(re.search(r"\$(\d+)", p.question).group(1))
        off = int(re.search(r"(\d+)% off", p.question).group(1))
        tax = int(re.search(r"(\d+)% (?:sales )?tax", p.question).group(1))
        assert Fraction(price) * (100 - off) / 100 * (100 + tax) / 100 == p.answer, p.question


def test_chickens_and_cows_answers_match_a_brute_force_count(problems: list[WordProblem]) -> None:
    farm = [p for p in of_kind(problems, "two_kind_system") if "chickens and cows" in p.question]
    assert farm
    for p in farm:
        heads, legs = map(int, re.search(r"(\d+) animals with (\d+) legs", p.question).groups())
        (cows,) = [c for c in range(heads + 1) if 2 * (heads - c) + 4 * c == legs]
        expected = cows if p.question.endswith("are cows?") else heads - cows
        assert p.answer == expected, p.question


def test_arithmetic_check_rejects_wrong_steps() -> None:
    good = WordProblem("q", ("Each box holds 12 pens, so 7 boxes hold 7 × 12 = 84 pens.",
                             "With 6 more that is 84 + 6 = 90 pens."), 90, "t")
    assert arithmetic_is_consistent(good)
    wrong_step = WordProblem("q", ("7 boxes hold 7 × 12 = 85 pens.", "84 + 6 = 90."), 90, "t")
    assert not arithmetic_is_consistent(wrong_step)
    wrong_answer = WordProblem("q", good.steps, 91, "t")
    assert not arithmetic_is_consistent(wrong_answer)


def test_unverifiable_template_raises_naming_it() -> None:
    def always_fraction(rng: random.Random) -> Draft:
        raise Resample("3 / 2 people")

    with pytest.raises(ProblemGenerationError, match="halves"):
        draw_verified(Template("halves", always_fraction, lambda params, answer: True), random.Random(0))

    good = generate_problems(seed=0, n=1)[0]

    def builds_it(rng: random.Random) -> Draft:
        return Draft(good.question, good.steps, good.answer, {})

    with pytest.raises(ProblemGenerationError, match="rejected"):
        draw_verified(Template("rejected", builds_it, lambda params, answer: False), random.Random(0))


def test_splits_are_sized_deterministic_and_disjoint() -> None:
    splits = split_problems(seed=5, n_train=300, n_validation=60, n_heldout=60)
    assert {k: len(v) for k, v in splits.items()} == {TRAIN: 300, VALIDATION: 60, HELDOUT_EVAL: 60}
    assert splits == split_problems(seed=5, n_train=300, n_validation=60, n_heldout=60)
    keys = {name: {normalise_question(p.question) for p in ps} for name, ps in splits.items()}
    assert all(len(keys[name]) == len(splits[name]) for name in splits)
    assert not keys[TRAIN] & keys[HELDOUT_EVAL]
    assert not keys[TRAIN] & keys[VALIDATION]
    assert not keys[VALIDATION] & keys[HELDOUT_EVAL]
    # The evaluation set must not move when the training set is resized.
    assert split_problems(seed=5, n_train=10, n_validation=60, n_heldout=60)[HELDOUT_EVAL] == splits[HELDOUT_EVAL]
    assert splits[TRAIN][:30] != splits[HELDOUT_EVAL][:30]


def test_colliding_questions_are_dropped_and_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    # A family with only six questions (some differing only in case) forces collisions.
    def tiny(rng: random.Random) -> Draft:
        n = rng.randint(1, 6)
        text = f"What is {n} + {n}?"
        return Draft(text.upper() if rng.random() < 0.5 else text, (f"{n} + {n} = {2 * n}.", f"So {n} × 2 = {2 * n}."),
                     2 * n, {})

    monkeypatch.setattr(procedural, "TEMPLATES", (Template("tiny", tiny, lambda params, answer: True),))
    monkeypatch.setattr(procedural, "MAX_DUPLICATE_DRAWS", 500)
    splits = split_problems(seed=0, n_train=3, n_validation=1, n_heldout=2)
    keys = [normalise_question(p.question) for ps in splits.values() for p in ps]
    assert len(keys) == len(set(keys)) == 6
    with pytest.raises(ProblemGenerationError, match="distinct"):
        generate_problems(seed=0, n=7)


def test_normalised_keys_ignore_case_and_spacing() -> None:
    assert normalise_question("Solve  for x:\n3x + 1 = 7.") == normalise_question("solve for X: 3x + 1 = 7.")


def test_documents_are_labelled_synthetic_math(problems: list[WordProblem]) -> None:
    p = problems[0]
    doc = p.to_document(HELDOUT_EVAL, 4)
    assert doc.id == "procedural/heldout_eval/4"
    assert doc.source == "procedural" and doc.domain == "math"
    assert doc.synthetic and doc.split == HELDOUT_EVAL
    assert doc.metadata == {"split": HELDOUT_EVAL, "synthetic": True, "kind": p.kind, "answer": p.answer}
    assert doc.text == f"{p.question}\n{p.solution}"
