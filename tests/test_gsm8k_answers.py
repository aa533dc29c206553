"""GSM8K answer extraction (infir.eval.answers.gsm8k) on tricky model outputs: each row has its exact answer."""

from __future__ import annotations

import time

import pytest

from infir.eval.answers.gsm8k import extract_gsm8k_flexible, extract_gsm8k_strict, gsm8k_target, normalise_number

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
    ("5-3", "3"),
    ("The answer is 18.0", "18"),
    ("#### 12 but actually 13", "13"),
    ("no numbers here", None),
    ("", None),
    ("The ratio is 1/2", "2"),
    ("Loss: -$5", "-5"),
    ("Balance $-5", "-5"),
    ("It is \u221212", "-12"),
    ("Values 1,2", "2"),
    ("She ran 12,34 laps", "34"),
    ("about .5 of it", "0.5"),
    ("Answer: 007", "7"),
    ("Total: 3,000 dollars. ", "3000"),
    ("x2 = 10, so x = 5.", "5"),
    ("Step 1: 4*3=12\nStep 2: 12+3=15\n", "15"),
    ("He is 3rd with 50% of votes", "50"),
    ("It takes 2.5 hours", "2.5"),
    ("**Answer: 42**", "42"),
    ("$\\boxed{36}$", "36"),
    ("version 1.2.3", "3"),
    ("It is 10:30", "30"),
    ("From 3 to 5", "5"),
    ("1,0000", "0"),
    ("-0", "0"),
]


@pytest.mark.parametrize(("output", "expected"), GSM8K_FLEXIBLE)
def test_extract_gsm8k_flexible(output: str, expected: str | None) -> None:
    assert extract_gsm8k_flexible(output) == expected


# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["#### " + "9" * 10_000, "-" * 10_000 + "1", ("1," * 10_000) + "5", "$" * 10_000])
def test_extractors_survive_huge_input(text: str) -> None:
    start = time.monotonic()
    extract_gsm8k_strict(text)
    extract_gsm8k_flexible(text)
    assert time.monotonic() - start < 2.0


def test_huge_inputs_have_the_right_answers() -> None:
    assert extract_gsm8k_strict("#### " + "9" * 10_000) == "9" * 10_000
    assert extract_gsm8k_flexible("-" * 10_000 + "1") == "-1"


def test_row_counts_meet_the_brief() -> None:
    assert min(len(GSM8K_STRICT), len(GSM8K_FLEXIBLE)) >= 30
