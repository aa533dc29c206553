"""Multiple-choice answers: the option letter a generated answer commits to (MMLU with ``method: generate``)."""

from __future__ import annotations

import re

_STATEMENT_RE = re.compile(
    r"(?:answer|option|choice)(?:\s+is|\s*:|\s*=|\s+would\s+be|\s+should\s+be)\s*(?:option\s+|choice\s+)?"
    r"[\s(\[*$:]*(?:\\boxed\{|\\text\{|\\textbf\{)?\s*\(?([A-Za-z])(?![A-Za-z0-9'])",
    re.IGNORECASE)
_BOXED_LETTER_RE = re.compile(r"\\boxed\{\s*(?:\\text\{)?\s*\(?([A-Za-z])\)?\s*\}?\s*\}")
_BOLD_LETTER_RE = re.compile(r"\*\*\s*\(?([A-Z])\)?[.):]?\s*\*\*")
_LEADING_LETTER_RE = re.compile(r"\s*[(\[]?([A-Z])(?:[)\].:,]|\s*$)")
_LONE_LETTER_RE = re.compile(r"\s*[(\[]?([A-Za-z])[)\]]?[.:]?\s*")
_PAREN_LETTER_RE = re.compile(r"\(([A-Z])\)")
_STANDALONE_LETTER_RE = re.compile(r"(?<![A-Za-z0-9'\-])([A-Z])(?![A-Za-z0-9'\-])")


def extract_choice_letter(output: str, n_choices: int = 4) -> str | None:
    """The option letter (upper case, one of the first ``n_choices``) a generated MMLU answer commits to.

    Rules, first that applies wins:
    1. the last explicit statement: "answer is (B)", "Answer: C", "the correct option is d", "choice: (b)";
       a lower-case letter there counts unless a word follows it ("the answer is a cat" is an article);
    2. the last ``\\boxed{C}``; 3. the last bold letter ``**D**``;
    4. the output starts with a letter followed by ``.``, ``)``, ``:`` or nothing ("B. Paris", "(C)", "A");
    5. the whole output is one letter in either case ("b", "(c).");
    6. exactly one distinct letter in parentheses, "(B)", anywhere;
    7. exactly one distinct stand-alone capital letter anywhere, not counting "A"/"I" followed by a word
       (articles, pronoun). Otherwise None: an ambiguous output is not guessed.
    """
    if not 1 <= n_choices <= 26:
        raise ValueError(f"n_choices must be 1..26, got {n_choices}")
    valid = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:n_choices]
    text = output.strip()
    if not text:
        return None
    last = None
    for m in _STATEMENT_RE.finditer(text):
        letter = m.group(1)
        if letter.upper() not in valid:
            continue
        if letter.islower() and re.match(r"\s+[A-Za-z]", text[m.end():]):
            continue
        last = letter.upper()
    if last is not None:
        return last
    for pattern in (_BOXED_LETTER_RE, _BOLD_LETTER_RE):
        letters = [m.group(1).upper() for m in pattern.finditer(text) if m.group(1).upper() in valid]
        if letters:
            return letters[-1]
    m = _LEADING_LETTER_RE.match(text) or _LONE_LETTER_RE.fullmatch(text)
    if m and m.group(1).upper() in valid:
        return m.group(1).upper()
    in_parens = {m.group(1) for m in _PAREN_LETTER_RE.finditer(text) if m.group(1) in valid}
    if len(in_parens) == 1:
        return in_parens.pop()
    standalone = set()
    for m in _STANDALONE_LETTER_RE.finditer(text):
        letter = m.group(1)
        if letter not in valid or (letter in "AI" and re.match(r"\s+[a-z]", text[m.end():])):
            continue
        standalone.add(letter)
    return standalone.pop() if len(standalone) == 1 else None
