"""GSM8K grading (infir.eval.answers.gsm8k) on tricky model outputs: each row has its exact lm-eval verdict / number.

The literal rows below were derived from lm-eval 0.4.13's gsm8k yamls and filters; tests/test_gsm8k_lm_eval_agreement.py
checks the same functions against the installed harness itself.
"""

from __future__ import annotations

import pytest

from infir.eval.answers.gsm8k import (
    extract_gsm8k_flexible,
    extract_gsm8k_strict,
    gsm8k_target,
    lm_eval_exact_match,
    lm_eval_filter,
    lm_eval_target,
    normalise_number,
)

# --------------------------------------------------------------------------------------------------------------
# Numbers and GSM8K
# --------------------------------------------------------------------------------------------------------------

NUMBERS = [
    ("1,234", "1234"),
    ("3.50", "3.5"),
    ("18.0", "18"),
    ("$5", "5"),
    ("-0", "0"),
    ("-0.0", "0"),
    ("1/2", "0.5"),
    ("2/6", "1/3"),
    ("6/3", "2"),
    ("-3/8", "-0.375"),
    ("5.", "5"),
    ("-$5", "-5"),
    ("$-5", "-5"),
    (".5", "0.5"),
    ("+7", "7"),
    ("\u22127", "-7"),
    ("007", "7"),
    ("1,000,000.00", "1000000"),
    ("  42 ", "42"),
    ("0.1000", "0.1"),
    ("1e5", None),
    ("50%", None),
    ("1/0", None),
    ("1.5/3", None),
    ("abc", None),
    ("", None),
    (".", None),
    ("--5", None),
    ("5 apples", None),
]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_normalise_number(text: str, expected: str | None) -> None:
    assert normalise_number(text) == expected


@pytest.mark.parametrize(("field", "expected"), [
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72"),
    ("He pays 1,000 + 200 = 1,200\n#### 1,200", "1200"),
    ("So it costs $18.00\n#### $18.00", "18"),
    ("The loss is -3\n#### -3", "-3"),
    ("#### 18.0", "18"),
    ("#### 0.25.", "0.25"),
])
def test_gsm8k_target(field: str, expected: str) -> None:
    assert gsm8k_target(field) == expected


def test_gsm8k_target_errors_name_the_text() -> None:
    with pytest.raises(ValueError, match="no '####'.*the answer is 5"):
        gsm8k_target("the answer is 5")
    with pytest.raises(ValueError, match="not a number.*'five'"):
        gsm8k_target("#### five")


GSM8K_STRICT = [
    ("Some steps.\n#### 72", "72"),
    ("#### 1,200", "1200"),
    ("#### 1,200.", "1200"),
    ("#### -5", "-5"),
    ("#### 18.0", "18"),
    ("#### 3.50", "3.5"),
    ("#### 0.5", "0.5"),
    ("First #### 12 then #### 13", "12"),
    ("#### 7\n\nQuestion: next one\nAnswer: #### 9", "7"),
    ("The answer is 12.\n#### 12", "12"),
    ("#### 1,000,000", "1000000"),
    ("#### 42 apples", "42"),
    ("#### 42.", "42"),
    ("text#### 5", "5"),
    ("##### 5", "5"),
    ("#### 00012", "12"),
    ("#### -0", "0"),
    ("#### 12\n#### 99", "12"),
    ("#### 5%", "5"),
    ("#### 2.50 dollars", "2.5"),
    ("So the total is 15.", None),
    ("####5", None),
    ("#### $5", None),
    ("#### five", None),
    ("#### ", None),
    ("### 5", None),
    ("#### .", None),
    ("#### ,", None),
    ("#### 1.2.3", None),
    ("", None),
    ("#  ### 5", None),
    ("#### \u22125", None),
]


@pytest.mark.parametrize(("output", "expected"), GSM8K_STRICT)
def test_extract_gsm8k_strict(output: str, expected: str | None) -> None:
    assert extract_gsm8k_strict(output) == expected


GSM8K_FLEXIBLE = [
    ("The total is 72.", "72"),
    ("She has 5 apples and buys 3 more, so 8 apples", "8"),
    ("It costs $1,234.50 in total", "1234.5"),
    ("1,000,000", "1000000"),
    ("The price is $3.50.", "3.5"),
    ("The temperature drops to -7 degrees", "-7"),
    ("He walks 20km", "20"),
    ("5 - 3 = 2", "2"),
    ("5-3", "-3"),  # lm-eval's span: the sign glues to the last integer
    ("The answer is 18.0", "18"),
    ("#### 12 but actually 13", "13"),
    ("no numbers here", None),
    ("", None),
    ("The ratio is 1/2", "2"),
    ("Loss: -$5", "-5"),
    ("Balance $-5", "-5"),
    ("It is \u221212", "12"),  # a unicode minus is not in lm-eval's pattern
    ("Values 1,2", "12"),  # commas inside a digit run are separators, as in lm-eval
    ("She ran 12,34 laps", "1234"),
    ("It costs 1,00,000 rupees", "100000"),  # Indian grouping is one number (was 0)
    ("#### 1,00,000", "100000"),
    ("about .5 of it", "0.5"),
    ("Answer: 007", "7"),
    ("Total: 3,000 dollars. ", "3000"),
    ("x2 = 10, so x = 5.", "5"),
    ("Step 1: 4*3=12\nStep 2: 12+3=15\n", "15"),
    ("He is 3rd with 50% of votes", "50"),
    ("It takes 2.5 hours", "2.5"),
    ("**Answer: 42**", "42"),
    ("$\\boxed{36}$", "36"),
    ("version 1.2.3", None),  # one span "1.2.3", not a number
    ("It is 10:30", "30"),
    ("From 3 to 5", "5"),
    ("1,0000", "10000"),
    ("-0", "0"),
]


@pytest.mark.parametrize(("output", "expected"), GSM8K_FLEXIBLE)
def test_extract_gsm8k_flexible(output: str, expected: str | None) -> None:
    assert extract_gsm8k_flexible(output) == expected


# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["#### " + "9" * 10_000, "-" * 10_000 + "1", ("1," * 10_000) + "5", "$" * 10_000,
                                  "#### 1 " * 10_000, "x" * 100_000])
def test_grading_survives_huge_input(text: str) -> None:
    """Linear-time patterns only: these would take minutes if any step backtracked quadratically."""
    extract_gsm8k_strict(text)
    extract_gsm8k_flexible(text)
    for filter_name in ("strict-match", "flexible-extract"):
        lm_eval_exact_match(lm_eval_filter(text, filter_name), text)


def test_huge_inputs_have_the_right_answers() -> None:
    assert extract_gsm8k_strict("#### " + "9" * 10_000) == "9" * 10_000
    assert extract_gsm8k_flexible("-" * 10_000 + "1") == "-1"


def test_row_counts_meet_the_brief() -> None:
    assert min(len(GSM8K_STRICT), len(GSM8K_FLEXIBLE)) >= 30


# --------------------------------------------------------------------------------------------------------------
# lm-eval grading (the default metrics): the issue's cases, verdicts read off lm-eval 0.4.13's gsm8k yamls
# --------------------------------------------------------------------------------------------------------------

GOLD_18 = "She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18"

# (output, gold answer field, strict-match span, strict correct, flexible-extract span, flexible correct)
LM_EVAL_ROWS = [
    ("#### 18", GOLD_18, "18", True, "18", True),
    ("#### 18.", GOLD_18, "18.", True, "18.", True),  # one trailing "." is ignored
    ("#### 18.00", GOLD_18, "18.00", False, "18.00", False),  # strings, not numbers
    ("#### $18", GOLD_18, "[invalid]", False, "$18", True),  # "$" breaks strict-match, exact_match drops it
    ("It costs $1,8.", GOLD_18, "[invalid]", False, "$1,8.", True),  # "," and "$" and one "." are all ignored
    ("#### 13.50", "x\n#### 13.5", "13.50", False, "13.50", False),
    ("#### 3,000.00", "x\n#### 3000", "3,000.00", False, "3,000.00", False),
    ("#### 3,000", "x\n#### 3000", "3,000", True, "3,000", True),
    ("It is $1,250.00", "x\n#### 1,250", "[invalid]", False, "$1,250.00", False),
    ("#### 007", "x\n#### 7", "007", False, "007", False),
    ("#### -0", "x\n#### 0", "-0", False, "-0", False),
    ("#### 1,00,000", "x\n#### 100000", "1,00,000", True, "1,00,000", True),
    ("2 + 3 = 5\n\n#### 5", "x\n#### 5", "5", True, "5", True),  # "####" after a blank line still counts
    ("#### 5 then 6", "x\n#### 5", "5", True, "6", False),  # strict takes the first, flexible the last
    ("no number", "x\n#### 5", "[invalid]", False, "[invalid]", False),
]


@pytest.mark.parametrize(("output", "gold", "strict", "strict_ok", "flexible", "flexible_ok"), LM_EVAL_ROWS)
def test_lm_eval_grading(output: str, gold: str, strict: str, strict_ok: bool, flexible: str,
                         flexible_ok: bool) -> None:
    target = lm_eval_target(gold)
    assert lm_eval_filter(output, "strict-match") == strict
    assert lm_eval_exact_match(strict, target) is strict_ok
    assert lm_eval_filter(output, "flexible-extract") == flexible
    assert lm_eval_exact_match(flexible, target) is flexible_ok


def test_numeric_extra_forgives_what_lm_eval_does_not() -> None:
    """The separately named numeric metric reads the same spans and accepts formatting variants of the number."""
    for output in ("#### 18.00", "#### 18.0", "#### 018"):
        assert not lm_eval_exact_match(lm_eval_filter(output, "strict-match"), lm_eval_target(GOLD_18))
        assert extract_gsm8k_strict(output) == gsm8k_target(GOLD_18)


@pytest.mark.parametrize(("output", "strict", "flexible"), [
    ("So 5 + 1 = 6. The answer is 6.", "6", "6."),
    ("The answer is 6", "[invalid]", "6"),  # the yaml's unescaped "." needs one more character after the number
    ("The answer is 6!", "6", "6"),
    ("the answer is 6.", "[invalid]", "6."),
    ("#### 6", "[invalid]", "6"),
])
def test_lm_eval_cot_variant(output: str, strict: str, flexible: str) -> None:
    assert lm_eval_filter(output, "strict-match", "gsm8k_cot") == strict
    assert lm_eval_filter(output, "flexible-extract", "gsm8k_cot") == flexible
    assert lm_eval_target("x\n#### 6", "gsm8k_cot") == "6"
    assert extract_gsm8k_strict(output, "gsm8k_cot") == (None if strict == "[invalid]" else "6")


def test_unknown_filter_or_variant_is_named() -> None:
    with pytest.raises(ValueError, match="filter 'strict'"):
        lm_eval_filter("#### 5", "strict")
    with pytest.raises(ValueError, match="variant 'gsm8k-cot'"):
        lm_eval_target("#### 5", "gsm8k-cot")
