"""GSM8K answers: the gold number of an ``answer`` field and lm-evaluation-harness's strict / flexible filters."""

from __future__ import annotations

import re
from fractions import Fraction

MAX_EXACT_DIGITS = 200  # longer numbers are not evaluated as integers (no huge-integer arithmetic)
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-"})  # unicode minus / en dash written as a sign
_PLAIN_NUMBER_RE = re.compile(
    r"(?P<sign1>[-+]?)\s*\$?\s*(?P<sign2>[-+]?)(?P<num>\d+(?:\.\d*)?|\.\d+)(?:\s*/\s*(?P<den>\d+))?")
# lm-evaluation-harness gsm8k "strict-match": the number right after "#### ".
_STRICT_RE = re.compile(r"#### (\-?[0-9\.\,]+)")
# A number in running text: optional sign (only when not glued to a preceding word/number, so "5-3" is 5 and 3),
# optional "$", digits with thousands separators ("1,000,000") or plain digits, optional decimals. A trailing
# period is not part of it ("is 5." -> 5); units glued after it are ignored ("20km" -> 20).
_FLEX_NUMBER_RE = re.compile(
    r"(?:(?<![\w)\]])[-\u2212])?(?:\$[-\u2212]?)?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"
    r"|(?:(?<![\w)\]])[-\u2212])?(?<![\d.])\.\d+")


def normalise_number(text: str) -> str | None:
    """Canonical string of a number so that "1,234.50", "$1234.5" and "1234.5" compare equal as strings.

    Accepts an optional sign, ``$``, thousands commas (all commas are dropped, as lm-eval's GSM8K filter does),
    decimals and a trailing period. Integer fractions ``a/b`` are accepted and made exact: a terminating one
    becomes its decimal ("1/2" -> "0.5", "6/3" -> "2"), any other is reduced ("2/6" -> "1/3"). Trailing zeros
    go ("3.50" -> "3.5", "18.0" -> "18") and "-0" is "0". Anything else (exponents, percent, words) -> None.
    """
    if not isinstance(text, str):
        return None
    s = text.strip().translate(_MINUS_SIGNS).replace(",", "")
    s = s.rstrip(".").rstrip()
    m = _PLAIN_NUMBER_RE.fullmatch(s)
    if m is None or (m["sign1"] and m["sign2"]):
        return None
    num, den = m["num"], m["den"]
    negative = "-" in (m["sign1"] + m["sign2"])
    if den is None:  # by string manipulation: exact, and linear in the length however long the number is
        whole, _, frac = num.partition(".")
        canonical = (whole.lstrip("0") or "0") + ("." + frac.rstrip("0") if frac.rstrip("0") else "")
        return "-" + canonical if negative and canonical != "0" else canonical
    if "." in num or len(num) + len(den) > MAX_EXACT_DIGITS or int(den) == 0:
        return None
    value = Fraction(int(num), int(den))
    return _format_exact(-value if negative else value)


def _format_exact(value: Fraction) -> str:
    """Shortest exact string: integer, terminating decimal, or reduced "p/q"."""
    if value.denominator == 1:
        return str(value.numerator)
    twos = fives = 0
    rest = value.denominator
    while rest % 2 == 0:
        rest //= 2
        twos += 1
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    if rest != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value.numerator) * (10**places // value.denominator)
    digits = str(scaled).rjust(places + 1, "0")
    whole, frac = digits[:-places], digits[-places:].rstrip("0")
    return f"{'-' if value < 0 else ''}{whole}.{frac}"


def gsm8k_target(answer_field: str) -> str:
    """The gold number of a GSM8K ``answer`` field (the text after its ``####``), normalised like predictions."""
    if "####" not in answer_field:
        raise ValueError(f"GSM8K answer has no '####' line: {answer_field[-300:]!r}")
    raw = answer_field.rsplit("####", 1)[1].strip()
    target = normalise_number(raw)
    if target is None:
        raise ValueError(f"GSM8K answer after '####' is not a number: {raw!r}")
    return target


def extract_gsm8k_strict(output: str) -> str | None:
    """lm-eval "strict-match": the number after the FIRST ``#### `` (the format the few-shot exemplars teach).

    Deliberately as literal as the harness regex: "####5" or "#### $5" do not count.
    """
    m = _STRICT_RE.search(output)
    return normalise_number(m.group(1)) if m else None


def extract_gsm8k_flexible(output: str) -> str | None:
    """lm-eval "flexible-extract": the LAST number in the output, for models that never write ``####``.

    Fractions are not read as one number ("1/2" gives 2), as in the harness.
    """
    last = None
    for m in _FLEX_NUMBER_RE.finditer(output):
        last = m.group(0)
    return normalise_number(last) if last is not None else None


# --------------------------------------------------------------------------------------------------------------
# Boxed answers and Hendrycks MATH normalisation
# --------------------------------------------------------------------------------------------------------------
