"""MATH and multiple-choice answer extraction and scoring on tricky model outputs: each row has its exact answer."""

from __future__ import annotations

import threading
import time

import pytest

from infir.eval.answers import math_equivalence as answers
from infir.eval.answers.choice import extract_choice_letter
from infir.eval.answers.math_equivalence import (
    extract_math_answer,
    last_boxed,
    math_answers_equal,
    normalise_math_answer,
)

# MATH: boxed extraction, normalisation, equivalence
# --------------------------------------------------------------------------------------------------------------

BOXED = [
    ("The answer is $\\boxed{5}$.", "5"),
    ("$\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"),
    ("\\boxed{ 5 }", "5"),
    ("First \\boxed{3}, then \\boxed{4}", "4"),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
    ("\\boxed{{1,2}}", "{1,2}"),
    ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
    ("\\fbox{7}", "7"),
    ("\\boxed 5$", "5"),
    ("So $\\boxed 12$ is it", "12"),
    ("\\boxed 5\nnext line", "5"),
    ("\\boxed{", None),
    ("\\boxed{\\frac{1}{2}", None),
    ("\\boxed{5} and then \\boxed{6", None),
    ("no box here", None),
    ("", None),
    ("\\boxed{}", None),
    ("\\boxed{   }", None),
    ("\\boxed{x^{2}+1}", "x^{2}+1"),
    ("\\boxed{\\text{(A)}}", "\\text{(A)}"),
    ("$$\\boxed{(-\\infty, 3]}$$", "(-\\infty, 3]"),
    ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("\\boxed{\\boxed{9}}", "9"),
    ("\\boxed{3} \\fbox{4}", "4"),
    ("\\fbox{4} \\boxed{3}", "3"),
    ("\\boxedfoo{3}", None),
    ("\\boxed {8}", "8"),
    ("\\boxed{a}{b}", "a"),
    ("\\boxed{\\left( 1, 2 \\right)}", "\\left( 1, 2 \\right)"),
    ("The final answer is $\\boxed{10\\%}$. I hope it is correct.", "10\\%"),
    ("\\boxed{2\\sqrt{2}}.", "2\\sqrt{2}"),
    ("\\boxed{\\}}", "\\}"),
    ("Answer: \\boxed{-\\dfrac{3}{4}}", "-\\dfrac{3}{4}"),
]


@pytest.mark.parametrize(("text", "expected"), BOXED)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


@pytest.mark.parametrize(("output", "expected"), [
    ("So $\\boxed{\\frac{3}{4}}$.", "\\frac{3}{4}"),
    ("Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
    ("The final answer is 12. I hope it is correct.", "12"),
    ("Thus the answer is 3.5.", "3.5"),
    ("The answer is: $x^2+1$", "x^2+1"),
    ("The answer is 4. Wait, the final answer is 5.", "5"),
    ("Final Answer: 7", "7"),
    ("answer is \\(\\sqrt{2}\\).", "\\sqrt{2}"),
    ("The answer is \\boxed{8}, not 9.", "8"),
    ("I do not know.", None),
    ("The final answer is $$.", None),
    ("\\boxed{", None),
])
def test_extract_math_answer(output: str, expected: str | None) -> None:
    assert extract_math_answer(output) == expected


@pytest.mark.parametrize(("answer", "expected"), [
    ("\\frac12", "\\frac{1}{2}"),
    ("\\dfrac{1}{2}", "\\frac{1}{2}"),
    ("\\tfrac34", "\\frac{3}{4}"),
    ("\\frac\\pi2", "\\frac{\\pi}{2}"),
    ("\\frac{\\frac12}{3}", "\\frac{\\frac{1}{2}}{3}"),
    ("x = 3", "3"),
    ("k=\\frac{1}{2}", "\\frac{1}{2}"),
    ("x \\in [1, 2]", "[1,2]"),
    ("10\\%", "10"),
    ("90^\\circ", "90"),
    ("90^{\\circ}", "90"),
    ("5\\text{ cm}", "5"),
    ("5 \\text{cm}^2", "5"),
    ("\\text{(A)}", "A"),
    ("\\text{Monday}", "Monday"),
    ("\\$5.00", "5.00"),
    ("1,000", "1000"),
    ("10{,}000", "10000"),
    ("\\sqrt2", "\\sqrt{2}"),
    ("\\left( 1, 2 \\right)", "(1,2)"),
    ("0.5", "\\frac{1}{2}"),
    (".75", "0.75"),
    ("3/4", "\\frac{3}{4}"),
    ("$\\frac{1}{2}$.", "\\frac{1}{2}"),
    ("\\sin x", "\\sin x"),
    ("1,\\!000", "1000"),
    ("\\begin{pmatrix}1\\\\ 2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\log_2 8", "\\log_{2}8"),  # not "\\log_28" (log base 28)
    ("x^2 y", "x^{2}y"),
    ("4 units", "4"),
    ("12 square units", "12"),
    ("4 x", "4x"),  # a one-letter word is a variable, not a unit
    ("x=1 \\text{ or } x=2", "1,2"),
    ("x = -1 \\text{and} x = 3", "-1,3"),
    ("2 or 3", "2,3"),
    ("f(x) = 2x", "2x"),
    ("p(3)=7", "7"),
])
def test_normalise_math_answer(answer: str, expected: str) -> None:
    assert normalise_math_answer(answer) == expected


MATH_EQUIVALENCE = [
    # equal: text normalisation alone
    ("\\frac12", "\\frac{1}{2}", True),
    ("\\dfrac{1}{2}", "1/2", True),
    ("x=3", "3", True),
    ("10\\%", "10", True),
    ("(1,2)", "(1, 2)", True),
    ("90^\\circ", "90", True),
    ("5\\text{ cm}", "5", True),
    ("\\text{(A)}", "A", True),
    ("\\text{(A)}", "(A)", True),
    ("\\$1,000", "1000", True),
    ("\\left[ 0, 1 \\right)", "[0,1)", True),
    # equal: by value
    ("\\frac12", "0.5", True),
    ("0.75", "\\frac{3}{4}", True),
    ("5.0", "5", True),
    ("-\\frac{3}{4}", "-0.75", True),
    ("\\frac{6}{8}", "\\frac34", True),
    ("\\frac13", "0.3333333", True),
    # equal: symbolic
    ("2\\sqrt{2}", "\\sqrt{8}", True),
    ("\\pi/2", "\\frac{\\pi}{2}", True),
    ("x^2+1", "1+x^2", True),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", True),
    ("\\frac{\\sqrt{3}}{2}", "0.8660254", True),
    ("\\infty", "\\infty", True),
    ("(-\\infty, 3]", "(-\\infty,\\frac{6}{2}]", True),
    ("\\{1,2\\}", "\\{2,1\\}", True),
    ("(x+1)^2", "x^2+2x+1", True),
    ("y = 2x+1", "2x+1", True),
    ("2x+3y=6", "3y+2x=6", True),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}\\frac{2}{2}\\\\ 2\\end{pmatrix}", True),
    ("3\\pi", "\\pi\\cdot 3", True),
    ("\\sqrt{2}/2", "\\frac{1}{\\sqrt{2}}", True),
    # the cases, each as math-verify decides it
    ("\\log_2 8", "3", True),
    ("3", "\\log_2 8", True),
    ("\\log_2 8", "\\log_2{8}", True),
    ("4 units", "4", True),
    ("x=1 \\text{ or } x=2", "1, 2", True),
    ("x=1, x=2", "\\{1,2\\}", True),
    ("f(x)=2x", "2x", True),
    ("\\cos \\frac{\\pi}{2}", "0", True),  # an exact zero, not a relative tolerance around 0
    ("\\frac{1}{7}", "0.142857", True),  # decimals are compared rounded to 6 places
    ("1, 2", "(1,2)", True),  # a written list against a pair, in order
    ("\\log_2 9", "3", False),
    ("3.14159", "\\pi", False),
    ("1000000", "1000000.1", False),
    ("2, 1", "(1,2)", False),
    ("5 \\text{ or } 6", "5", False),
    # not equal
    ("3", "4", False),
    ("1000001", "1000000", False),
    ("\\frac{1}{2}", "\\frac{1}{3}", False),
    ("10\\%", "0.1", False),
    ("(1,2)", "(2,1)", False),
    ("[1,2]", "(1,2)", False),
    ("x^2+1", "x^2-1", False),
    ("\\infty", "-\\infty", False),
    ("2\\sqrt{2}", "\\sqrt{2}", False),
    ("\\text{(A)}", "B", False),
    ("A", "a", False),
    ("\\text{Monday}", "\\text{Mondya}", False),
    ("\\{1,2\\}", "\\{1,2,3\\}", False),
    ("0.333", "\\frac13", False),
    ("\\pi", "3.14", False),
    ("", "", False),
    ("5", "", False),
]


@pytest.mark.parametrize(("predicted", "target", "expected"), MATH_EQUIVALENCE)
def test_math_answers_equal(predicted: str, target: str, expected: bool) -> None:
    assert math_answers_equal(predicted, target) is expected


def test_math_answers_equal_is_symmetric_on_symbolic_cases() -> None:
    assert math_answers_equal("\\sqrt{8}", "2\\sqrt{2}") and math_answers_equal("1+x^2", "x^2+1")
    assert not math_answers_equal("\\sqrt{2}", "2\\sqrt{2}")


def test_symbolic_comparison_works_from_a_thread() -> None:
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(math_answers_equal("2\\sqrt{2}", "\\sqrt{8}")))
    thread.start()
    thread.join(timeout=30)
    assert results == [True]


def test_without_a_worker_text_and_numbers_still_compare(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answers, "_WORKER", answers._SymbolicWorker())
    monkeypatch.setattr(answers.sys, "executable", "/nonexistent/python")  # the worker cannot start
    assert math_answers_equal("\\frac12", "0.5") and math_answers_equal("x = 3", "3")
    assert not math_answers_equal("2\\sqrt{2}", "\\sqrt{8}")  # needs sympy: reported as not equal, no exception


# --------------------------------------------------------------------------------------------------------------
# Malformed, huge and adversarial input: fast, and no exception
# --------------------------------------------------------------------------------------------------------------

NESTED = "\\frac{" * 5000 + "1" + "}{2}" * 5000  # ~ 25k characters, 5000 levels deep
ADVERSARIAL_PAIRS = [
    ("\\boxed{", "5"),
    ("x^(10^10^10)", "x^2"),
    ("x^(10^10^10)", "x^(10^10^10)+1"),
    ("(x+1)^{100000}", "x+1"),  # expands for longer than the timeout: the worker is killed
    ("\\binom{10^{9}}{5\\cdot 10^{8}}", "3"),
    (NESTED, "\\frac{1}{2}"),
    ("(" * 10_000, ")" * 10_000),
    ("}{" * 5000, "5"),
    ("\\frac{1}{0}", "\\frac{1}{0}+1"),
    ("\\sqrt{-1}^{\\infty}", "1"),
    ("$$$$", "$"),
    ("\\left(\\right", "\\frac"),
    ("9" * 5000, "9" * 4999 + "8"),
]


@pytest.mark.parametrize(("predicted", "target"), ADVERSARIAL_PAIRS)
def test_adversarial_math_pairs_return_false_quickly(predicted: str, target: str) -> None:
    start = time.monotonic()
    assert math_answers_equal(predicted, target, timeout_s=1.0) is False
    assert time.monotonic() - start < 4.0


def test_timeout_is_enforced_and_the_worker_recovers() -> None:
    start = time.monotonic()
    assert math_answers_equal("(x+1)^{100000}", "x+1", timeout_s=0.3) is False
    assert time.monotonic() - start < 3.0
    assert math_answers_equal("2\\sqrt{2}", "\\sqrt{8}")  # a fresh worker answers the next request


@pytest.mark.parametrize("text", [
    "\\boxed{" * 10_000,
    "{" * 10_000 + "\\boxed{1" + "}" * 5000,
    "#### " + "9" * 10_000,
    "-" * 10_000 + "1",
    ("1," * 10_000) + "5",
    "$" * 10_000,
    NESTED,
    "\\\\" * 10_000,
    " " * 20_000 + "x",
    "1" + " or" * 7_000,
    "1 aa" * 5_000 + ",",
])
def test_extractors_survive_huge_input(text: str) -> None:
    start = time.monotonic()
    last_boxed(text)
    extract_math_answer(text)
    normalise_math_answer(text)
    extract_choice_letter(text)
    assert time.monotonic() - start < 2.0


def test_huge_inputs_have_the_right_answers() -> None:
    assert last_boxed("\\boxed{" * 10_000) is None
    assert normalise_math_answer(NESTED).count("\\frac") == 5000


# --------------------------------------------------------------------------------------------------------------
# Multiple choice
# --------------------------------------------------------------------------------------------------------------

CHOICES = [
    ("The answer is (B)", "B"),
    ("The answer is (B).", "B"),
    ("B. Paris is the capital.", "B"),
    ("Answer: C", "C"),
    ("**D**", "D"),
    ("The correct option is d.", "D"),
    ("the answer is: **c**", "C"),
    ("The answer is A because the others are wrong.", "A"),
    ("The answer is a good question; the answer is (C)", "C"),
    ("A good approach: compute 2+2. The answer is D", "D"),
    ("Option A is wrong. Option C is wrong. The answer is B.", "B"),
    ("b", "B"),
    ("(c).", "C"),
    ("(A)", "A"),
    ("A", "A"),
    ("C) 42", "C"),
    ("I think it is (D) since 4 > 3.", "D"),
    ("So the best choice is B", "B"),
    ("$\\boxed{C}$", "C"),
    ("\\boxed{\\text{(B)}}", "B"),
    ("I believe B is correct", "B"),
    ("A cat is an animal.", None),
    ("The answer is E", None),
    ("Either B or C.", None),
    ("", None),
    ("I don't know", None),
    ("the answer is a cat", None),
    ("The answer is (E)", None),
]


@pytest.mark.parametrize(("output", "expected"), CHOICES)
def test_extract_choice_letter(output: str, expected: str | None) -> None:
    assert extract_choice_letter(output) == expected


def test_extract_choice_letter_more_choices() -> None:
    assert extract_choice_letter("The answer is (E)", n_choices=5) == "E"
    assert extract_choice_letter("Answer: J", n_choices=10) == "J"
    assert extract_choice_letter("Answer: C", n_choices=2) is None
    with pytest.raises(ValueError, match="n_choices"):
        extract_choice_letter("A", n_choices=0)


def test_row_counts_meet_the_brief() -> None:
    assert min(len(BOXED), len(MATH_EQUIVALENCE)) >= 30
    assert len(CHOICES) >= 15
