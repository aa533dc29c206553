"""GSM8K grading: lm-evaluation-harness's strict-match / flexible-extract exact match, plus a numeric extra.

Why two comparisons: the default metrics must be the numbers researchers publish, so they reproduce lm-eval's
string comparison exactly ("18.00" is wrong against gold "18"). The numeric extra reads the SAME spans but
compares them as numbers, so a gap between the two is purely answer formatting.
"""

from __future__ import annotations

import re
from fractions import Fraction

# --------------------------------------------------------------------------------------------------------------
# lm-evaluation-harness 0.4.x grading, reproduced exactly (lm_eval/tasks/gsm8k/gsm8k.yaml and gsm8k-cot.yaml,
# lm_eval/filters/extraction.py RegexFilter + take_first, lm_eval/api/metrics.py exact_match). These are the
# default GSM8K metrics: a published "gsm8k strict-match 0.62" means exactly this string comparison, so "18.00"
# against gold "18" is wrong here, as it is there. The numeric functions below are a separate, named extra.
# --------------------------------------------------------------------------------------------------------------

LM_EVAL_INVALID = "[invalid]"  # RegexFilter's fallback when the pattern finds nothing
LM_EVAL_FILTERS = ("strict-match", "flexible-extract")
LM_EVAL_VARIANTS = ("gsm8k", "gsm8k_cot")
# Per variant, the regex of each filter: gsm8k.yaml strict-match needs "#### n"; gsm8k-cot.yaml's needs
# "The answer is n" followed by any one character (its "." is unescaped). flexible-extract is shared: the LAST
# match (group_select -1) of "a run of >= 2 chars of $0-9.,  |  an integer", whichever alternative matched.
_FLEXIBLE_EXTRACT = (re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)"), -1)  # (pattern, group_select)
_LM_EVAL_PATTERNS = {
    ("gsm8k", "strict-match"): (re.compile(r"#### (\-?[0-9\.\,]+)"), 0),
    ("gsm8k_cot", "strict-match"): (re.compile(r"The answer is (\-?[0-9\.\,]+)."), 0),
    ("gsm8k", "flexible-extract"): _FLEXIBLE_EXTRACT,
    ("gsm8k_cot", "flexible-extract"): _FLEXIBLE_EXTRACT,
}
_LM_EVAL_MARKER = "#### "  # exact_match's regex "(?s).*#### " deletes everything up to the LAST "#### "
_TRAILING_PERIOD_RE = re.compile(r"\.$")  # exact_match's last ignore regex, "$" semantics included


def _check_variant(variant: str) -> None:
    if variant not in LM_EVAL_VARIANTS:
        raise ValueError(f"unknown GSM8K lm-eval variant {variant!r}; expected one of {LM_EVAL_VARIANTS}")


def lm_eval_filter(output: str, filter_name: str, variant: str = "gsm8k") -> str:
    """What lm-eval's filter pipeline ``filter_name`` (regex, then take_first) leaves of one generation.

    As RegexFilter: ``findall``, pick match ``group_select`` (0 first, -1 last); when the pattern has several
    groups the match is a tuple and its first non-empty group is taken; the result is stripped; no match (or a
    tuple of empty groups) gives ``"[invalid]"``. A non-string output counts as "" as there.
    """
    _check_variant(variant)
    if filter_name not in LM_EVAL_FILTERS:
        raise ValueError(f"unknown GSM8K lm-eval filter {filter_name!r}; expected one of {LM_EVAL_FILTERS}")
    pattern, group_select = _LM_EVAL_PATTERNS[(variant, filter_name)]
    matches = pattern.findall(output if isinstance(output, str) else "")
    if not matches:
        return LM_EVAL_INVALID
    match = matches[group_select]
    if isinstance(match, tuple):
        match = next((group for group in match if group), LM_EVAL_INVALID)
    return match.strip()


def lm_eval_target(answer_field: str, variant: str = "gsm8k") -> str:
    """What the task's ``doc_to_target`` renders: gsm8k keeps the whole ``answer`` field (exact_match later cuts
    it at ``#### ``); gsm8k-cot keeps the stripped text after the last ``####``."""
    _check_variant(variant)
    if variant == "gsm8k":
        return answer_field
    return answer_field.split("####")[-1].strip()


def _lm_eval_exact_match_form(text: str) -> str:
    """One side of exact_match after the gsm8k yamls' ``regexes_to_ignore`` (in their order) and ``ignore_case``.

    The "(?s).*#### " regex is applied as the equivalent cut after the last "#### ": same result, linear time
    instead of the regex's quadratic backtracking on long outputs. Trailing NULs go because lm-eval compares
    numpy unicode arrays, which drop them.
    """
    text = text.replace(",", "").replace("$", "")
    marker = text.rfind(_LM_EVAL_MARKER)
    if marker >= 0:
        text = text[marker + len(_LM_EVAL_MARKER):]
    text = _TRAILING_PERIOD_RE.sub("", text)
    return text.lower().rstrip("\x00")


def lm_eval_exact_match(prediction: str, target: str) -> bool:
    """lm-eval ``exact_match`` with the gsm8k yaml's settings: ignore "," "$", everything up to "#### " and one
    trailing "."; ignore_case true; ignore_punctuation false; then plain string equality."""
    return _lm_eval_exact_match_form(prediction) == _lm_eval_exact_match_form(target)


# --------------------------------------------------------------------------------------------------------------
# Numeric extra (the task's strict_/flexible_numeric_accuracy): lm-eval's spans, compared as numbers
# --------------------------------------------------------------------------------------------------------------

MAX_EXACT_DIGITS = 200  # longer numbers are not evaluated as integers (no huge-integer arithmetic)
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-"})  # unicode minus / en dash written as a sign
_PLAIN_NUMBER_RE = re.compile(
    r"(?P<sign1>[-+]?)\s*\$?\s*(?P<sign2>[-+]?)(?P<num>\d+(?:\.\d*)?|\.\d+)(?:\s*/\s*(?P<den>\d+))?")


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


def extract_gsm8k_strict(output: str, variant: str = "gsm8k") -> str | None:
    """The strict-match span (``#### n``; gsm8k_cot: ``The answer is n``) as a normalised number, None if absent."""
    return _numeric_span(lm_eval_filter(output, "strict-match", variant))


def extract_gsm8k_flexible(output: str, variant: str = "gsm8k") -> str | None:
    """The flexible-extract span (the last number-like run, e.g. "1,00,000" whole) as a normalised number."""
    return _numeric_span(lm_eval_filter(output, "flexible-extract", variant))


def _numeric_span(span: str) -> str | None:
    return None if span == LM_EVAL_INVALID else normalise_number(span)
