"""Curation stage 1: rule-based (heuristic) document filters (PAPER.md §2, "Heuristic filtering").

The paper's thresholds are [unknown]; every default below is the public rule it is named after,
with its source next to it:

* ``GopherQualityFilter`` / ``GopherRepetitionFilter``: Rae et al. 2021 (Gopher, arXiv:2112.11446,
  §A.1.1 and Table A1), thresholds as in datatrove's ``gopher_quality_filter.py`` /
  ``gopher_repetition_filter.py``.
* ``C4QualityFilter``: Raffel et al. 2020 (C4), thresholds as in the reference code
  ``tensorflow_datasets/text/c4_utils.py`` (datatrove's ``C4QualityFilter`` re-implements it).
* ``FineWebQualityFilter``: Penedo et al. 2024 (FineWeb), datatrove's ``fineweb_quality_filter.py``.
* ``CodeFileFilter``: The Stack / StarCoder "basic" filters (bigcode-dataset
  ``preprocessing/filtering.py``) plus CodeParrot's auto-generated-file check.
* ``ColonEndingMathFilter``: the paper's own lesson (math pages ending in ':' teach EOS after ':').

Every filter takes ``applies_to`` (:mod:`infir.data.curation.scope`: ``None`` = every domain; ``"!x"``
excludes ``x``; ``[]`` = no domain). A document outside a filter's domains is kept by it
(``drop_reason`` returns ``None``).
Prose filters default to ``["!code"]``, ``CodeFileFilter`` to ``["code"]``, the colon rule to all.
``check(doc)`` runs the rules ignoring the domain scope.

Word splitting is ``str.split`` plus stripping punctuation from each token (datatrove uses an
NLTK/spaCy word tokenizer; pure-punctuation tokens are not words in either). Sentence counting for
C4 is a regex for terminal punctuation, not NLTK's punkt (abbreviations like "Dr." over-count).

Only ``C4QualityFilter`` mutates documents: when it keeps a document (and ``rewrite_text``), it
replaces ``doc.text`` with the cleaned lines and records ``metadata["c4_lines_removed"]``.
"""

from __future__ import annotations

import os
import re
import string
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import accumulate, filterfalse, islice, repeat
from operator import methodcaller

from infir.data.curation.base import DocumentFilter
from infir.data.curation.scope import DomainScope
from infir.data.documents import Document

# --- shared text helpers -----------------------------------------------------------------------

_PUNCT = string.punctuation + "“”‘’«»„‚‹›—–…·•¡¿"
_PARAGRAPH_SPLIT = re.compile(r"\n{2,}")
_HAS_ALPHA = re.compile(r"[^\W\d_]")
_NON_ALNUM = re.compile(r"[\W_]+")
_NON_ALPHA = re.compile(r"[\W\d_]+")
_ELLIPSES = ("...", "…")
_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")  # C4 (tfds c4_utils _CITATION_REGEX)
# A sentence ends at a run of . ! ? (optionally closed by quotes/brackets) followed by space or end.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")

DEFAULT_BULLETS = ("•", "-", "*", "‣", "◦", "▪", "●")  # datatrove: "•" and "-"; plus common markdown/unicode


@lru_cache(maxsize=64)
def _keyword_regex(keywords: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(map(re.escape, keywords)), re.IGNORECASE)


def split_words(text: str) -> list[str]:
    """Whitespace tokens with surrounding punctuation stripped; pure-punctuation tokens dropped."""
    return list(filter(None, map(str.strip, text.split(), repeat(_PUNCT))))


def _duplicates(items: Sequence[str]) -> tuple[int, int]:
    """(elements, characters) that repeat an earlier element: all minus the first occurrences."""
    unique = set(items)
    return len(items) - len(unique), sum(map(len, items)) - sum(map(len, unique))


def _pairs(value: Mapping | Iterable | None) -> tuple[tuple[int, float], ...]:
    """``{n: frac}`` or ``[[n, frac], ...]`` (Hydra gives either) -> sorted ``((n, frac), ...)``."""
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((int(n), float(f)) for n, f in items if f is not None))


# --- domain scope ------------------------------------------------------------------------------


class HeuristicFilter(DocumentFilter):
    """A ``DocumentFilter`` restricted to some domains; subclasses implement ``check``."""

    name = "heuristic"

    def __init__(self, applies_to: Sequence[str] | None = None) -> None:
        self.scope = DomainScope(applies_to)
        self.applies_to = self.scope.applies_to

    def applies(self, doc: Document) -> bool:
        return self.scope.covers(doc.domain)

    def drop_reason(self, doc: Document) -> str | None:
        return self.check(doc) if self.applies(doc) else None

    @abstractmethod
    def check(self, doc: Document) -> str | None:
        """Why ``doc`` breaks this filter's rules (ignoring ``applies_to``), or ``None``."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={sorted(v) if isinstance(v, frozenset) else v!r}"
                           for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


PROSE_DOMAINS = ("!code",)
CODE_DOMAINS = ("code",)


# --- Gopher quality ----------------------------------------------------------------------------

GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")  # Gopher §A.1.1


class GopherQualityFilter(HeuristicFilter):
    """Gopher's quality rules (Rae et al. 2021 §A.1.1); defaults = datatrove ``GopherQualityFilter``.

    Reasons: ``gopher_short_doc``, ``gopher_long_doc``, ``gopher_below_avg_word_length``,
    ``gopher_above_avg_word_length``, ``gopher_symbol_word_ratio`` (``#`` or ``...``/``…`` per word),
    ``gopher_bullet_lines_ratio``, ``gopher_ellipsis_lines_ratio``, ``gopher_alpha_words_ratio``,
    ``gopher_stop_words``. Stop words are matched case-insensitively (datatrove: case-sensitive).
    """

    name = "gopher_quality"

    def __init__(self, min_doc_words: int | None = 50, max_doc_words: int | None = 100_000,
                 min_avg_word_length: float | None = 3, max_avg_word_length: float | None = 10,
                 max_symbol_word_ratio: float | None = 0.1, max_bullet_lines_ratio: float | None = 0.9,
                 max_ellipsis_lines_ratio: float | None = 0.3, min_alpha_words_ratio: float | None = 0.8,
                 min_stop_words: int | None = 2, stop_words: Sequence[str] | None = None,
                 bullets: Sequence[str] | None = None, applies_to: Sequence[str] | None = PROSE_DOMAINS) -> None:
        super().__init__(applies_to)
        self.min_doc_words = min_doc_words
        self.max_doc_words = max_doc_words
        self.min_avg_word_length = min_avg_word_length
        self.max_avg_word_length = max_avg_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio = max_bullet_lines_ratio
        self.max_ellipsis_lines_ratio = max_ellipsis_lines_ratio
        self.min_alpha_words_ratio = min_alpha_words_ratio
        self.min_stop_words = min_stop_words
        self.stop_words = frozenset(w.lower() for w in (GOPHER_STOP_WORDS if stop_words is None else stop_words))
        self.bullets = tuple(DEFAULT_BULLETS if bullets is None else bullets)

    def check(self, doc: Document) -> str | None:
        text = doc.text
        words = split_words(text)
        n = len(words)
        if n == 0 or (self.min_doc_words is not None and n < self.min_doc_words):
            return "gopher_short_doc"
        if self.max_doc_words is not None and n > self.max_doc_words:
            return "gopher_long_doc"
        mean_len = sum(map(len, words)) / n
        if self.min_avg_word_length is not None and mean_len < self.min_avg_word_length:
            return "gopher_below_avg_word_length"
        if self.max_avg_word_length is not None and mean_len > self.max_avg_word_length:
            return "gopher_above_avg_word_length"
        if self.max_symbol_word_ratio is not None and (
                text.count("#") / n > self.max_symbol_word_ratio
                or (text.count("...") + text.count("…")) / n > self.max_symbol_word_ratio):
            return "gopher_symbol_word_ratio"
        if self.max_bullet_lines_ratio is not None or self.max_ellipsis_lines_ratio is not None:
            lines = text.splitlines() or [""]
            if self.max_bullet_lines_ratio is not None and self.bullets and (
                    sum(map(methodcaller("startswith", self.bullets), map(str.lstrip, lines))) / len(lines)
                    > self.max_bullet_lines_ratio):
                return "gopher_bullet_lines_ratio"
            if self.max_ellipsis_lines_ratio is not None and (
                    sum(map(methodcaller("endswith", _ELLIPSES), map(str.rstrip, lines))) / len(lines)
                    > self.max_ellipsis_lines_ratio):
                return "gopher_ellipsis_lines_ratio"
        if self.min_alpha_words_ratio is not None:
            # words that are not all letters are few; only those need the regex
            no_alpha = sum(1 for w in filterfalse(str.isalpha, words) if not _HAS_ALPHA.search(w))
            if (n - no_alpha) / n < self.min_alpha_words_ratio:
                return "gopher_alpha_words_ratio"
        if self.min_stop_words:
            stop_hits = filter(self.stop_words.__contains__, map(str.lower, words))
            if next(islice(stop_hits, self.min_stop_words - 1, None), None) is None:  # stops at the k-th hit
                return "gopher_stop_words"
        return None


# --- Gopher repetition -------------------------------------------------------------------------

# Gopher Table A1 (= datatrove GopherRepetitionFilter defaults)
GOPHER_TOP_N_GRAMS = {2: 0.20, 3: 0.18, 4: 0.16}
GOPHER_DUP_N_GRAMS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


class GopherRepetitionFilter(HeuristicFilter):
    """Gopher's repetition rules (Rae et al. 2021 Table A1); defaults = datatrove's.

    Reasons: ``gopher_dup_para_frac``, ``gopher_dup_para_char_frac``, ``gopher_dup_line_frac``,
    ``gopher_dup_line_char_frac``, ``gopher_top_{n}_gram_char_frac`` (n = 2, 3, 4),
    ``gopher_dup_{n}_gram_char_frac`` (n = 5..10). Character fractions are over ``len(text)``.

    Top n-gram: characters of the most frequent n-gram (joined by spaces, as datatrove) times its
    count; an n-gram seen once is no repetition and never counts. Duplicated n-grams: one pass marks
    every word covered by an occurrence of an n-gram already seen earlier; the fraction is the
    characters of the covered words (each word counted once however many n-grams cover it). Since a
    duplicated m-gram contains a duplicated n-gram for n < m, the scan stops at the first n with none.
    """

    name = "gopher_repetition"

    def __init__(self, dup_line_frac: float | None = 0.30, dup_para_frac: float | None = 0.30,
                 dup_line_char_frac: float | None = 0.20, dup_para_char_frac: float | None = 0.20,
                 top_n_grams: Mapping[int, float] | Sequence | None = None,
                 dup_n_grams: Mapping[int, float] | Sequence | None = None,
                 applies_to: Sequence[str] | None = PROSE_DOMAINS) -> None:
        super().__init__(applies_to)
        self.dup_line_frac = dup_line_frac
        self.dup_para_frac = dup_para_frac
        self.dup_line_char_frac = dup_line_char_frac
        self.dup_para_char_frac = dup_para_char_frac
        self.top_n_grams = _pairs(GOPHER_TOP_N_GRAMS if top_n_grams is None else top_n_grams)
        self.dup_n_grams = _pairs(GOPHER_DUP_N_GRAMS if dup_n_grams is None else dup_n_grams)

    def check(self, doc: Document) -> str | None:
        text = doc.text
        total = len(text)
        stripped = text.strip()
        if not stripped:
            return None  # nothing repeats in an empty document (GopherQualityFilter drops it)

        paragraphs = _PARAGRAPH_SPLIT.split(stripped) if "\n\n\n" in stripped else stripped.split("\n\n")
        dup, dup_chars = _duplicates(paragraphs)
        if self.dup_para_frac is not None and dup / len(paragraphs) > self.dup_para_frac:
            return "gopher_dup_para_frac"
        if self.dup_para_char_frac is not None and dup_chars / total > self.dup_para_char_frac:
            return "gopher_dup_para_char_frac"

        lines = list(filter(None, stripped.split("\n")))
        dup, dup_chars = _duplicates(lines)
        if self.dup_line_frac is not None and dup / len(lines) > self.dup_line_frac:
            return "gopher_dup_line_frac"
        if self.dup_line_char_frac is not None and dup_chars / total > self.dup_line_char_frac:
            return "gopher_dup_line_char_frac"

        words = split_words(text)
        n_words = len(words)
        if self.top_n_grams and n_words:
            max_word = max(map(len, words))
            top_count = n_words  # an upper bound on the top count of the next n-gram size
            for n, frac in self.top_n_grams:
                if n_words < n:
                    continue
                if top_count * (n * max_word + n - 1) <= frac * total:
                    continue  # cannot exceed the threshold: skip counting (exact pruning)
                gram, count = Counter(zip(*(words[i:] for i in range(n)))).most_common(1)[0]
                top_count = count
                if count > 1 and (sum(map(len, gram)) + n - 1) * count > frac * total:
                    return f"gopher_top_{n}_gram_char_frac"

        if self.dup_n_grams and n_words >= self.dup_n_grams[0][0]:
            cum = [0, *accumulate(map(len, words))]
            for n, frac in self.dup_n_grams:
                if n_words < n:
                    break
                grams = list(zip(*(words[i:] for i in range(n))))
                if len(set(grams)) == len(grams):
                    break  # no duplicated n-gram, so none for any larger n either
                if _covered_dup_chars(grams, n, cum) / total > frac:
                    return f"gopher_dup_{n}_gram_char_frac"
        return None


def _covered_dup_chars(grams: list[tuple], n: int, cum: list[int]) -> int:
    """Characters of the words covered by repeat occurrences of n-grams; one pass over positions."""
    seen: set[tuple] = set()
    covered_end = 0
    chars = 0
    for i, gram in enumerate(grams):
        if gram in seen:
            start = max(covered_end, i)
            covered_end = i + n
            chars += cum[covered_end] - cum[start]
        else:
            seen.add(gram)
    return chars


# --- C4 ----------------------------------------------------------------------------------------

# C4 reference code (tensorflow_datasets/text/c4_utils.py)
C4_END_PUNCTUATION = (".", "?", "!", '"')
C4_POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                        "use cookies")


def _c4_scan(text: str, *, remove_citations: bool = True, filter_no_terminal_punct: bool = True,
             end_punctuation: tuple[str, ...] = C4_END_PUNCTUATION, min_words_per_line: int | None = 5,
             max_word_length: int | None = 1000, filter_javascript: bool = True, filter_policy: bool = True,
             filter_lorem_ipsum: bool = False, filter_curly_bracket: bool = False, count_sentences_to: int = 0,
             ) -> tuple[list[str], int, int, str | None]:
    """C4's line loop: (kept lines, non-empty lines removed, sentences in kept lines, page drop reason).

    Sentences are counted only up to ``count_sentences_to`` (all that the page rule needs).

    Page-level rules (lorem ipsum, curly bracket) look only at lines that survived the line rules
    before them, in the reference code's order.
    """
    kept: list[str] = []
    removed = 0
    sentences = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if max_word_length is not None and len(line) > max_word_length and any(
                len(w) > max_word_length for w in line.split()):
            removed += 1
            continue
        if remove_citations and "[" in line:
            line = _CITATION.sub("", line)
        if filter_no_terminal_punct and (not line.endswith(end_punctuation) or line.endswith("...")):
            removed += 1
            continue
        if min_words_per_line is not None and len(line.split()) < min_words_per_line:
            removed += 1
            continue
        lower = line.lower()
        if filter_lorem_ipsum and "lorem ipsum" in lower:
            return kept, removed, sentences, "c4_lorem_ipsum"
        if filter_javascript and "javascript" in lower:
            removed += 1
            continue
        if filter_curly_bracket and "{" in line:
            return kept, removed, sentences, "c4_curly_bracket"
        if filter_policy and any(p in lower for p in C4_POLICY_SUBSTRINGS):
            removed += 1
            continue
        if sentences < count_sentences_to:
            sentences += len(_SENTENCE_END.findall(line)) or 1
        kept.append(line)
    return kept, removed, sentences, None


def c4_clean_lines(text: str, *, remove_citations: bool = True, filter_no_terminal_punct: bool = True,
                   end_punctuation: Sequence[str] = C4_END_PUNCTUATION, min_words_per_line: int | None = 5,
                   max_word_length: int | None = 1000, filter_javascript: bool = True,
                   filter_policy: bool = True) -> str:
    """C4's line-level cleaning only (no page drops): the kept, stripped lines joined by newlines.

    Pure: returns new text and touches nothing. Removes lines without terminal punctuation (or ending
    in "..."), with fewer than ``min_words_per_line`` words, with a word over ``max_word_length``
    characters, mentioning "javascript", or containing a cookie/policy phrase; strips
    Wikipedia-style citations ("[1]", "[edit]", "[citation needed]").
    """
    kept, _, _, _ = _c4_scan(text, remove_citations=remove_citations,
                             filter_no_terminal_punct=filter_no_terminal_punct,
                             end_punctuation=tuple(end_punctuation), min_words_per_line=min_words_per_line,
                             max_word_length=max_word_length, filter_javascript=filter_javascript,
                             filter_policy=filter_policy)
    return "\n".join(kept)


class C4QualityFilter(HeuristicFilter):
    """C4's rules (Raffel et al. 2020 §2.2); defaults = the reference ``c4_utils.py``.

    Reasons: ``c4_lorem_ipsum``, ``c4_curly_bracket`` (set ``filter_curly_bracket=False`` for text
    that legitimately has braces: code, LaTeX), ``c4_too_few_sentences`` (fewer than
    ``min_num_sentences`` sentences in the kept lines), ``c4_empty_after_cleaning`` (no line kept).

    Mutates: when it keeps a document and ``rewrite_text`` is true, ``doc.text`` becomes the
    cleaned text (``c4_clean_lines``; blank lines go too) and ``metadata["c4_lines_removed"]``
    counts the non-empty lines removed. Defaults follow c4_utils (min 3 sentences, min 5 words per
    line, end marks . ? ! "); datatrove's class swaps them (5 sentences, 3 words) and adds "'".
    FineWeb's pipeline runs this with ``filter_no_terminal_punct=False``.
    """

    name = "c4_quality"

    def __init__(self, remove_citations: bool = True, filter_no_terminal_punct: bool = True,
                 end_punctuation: Sequence[str] | None = None, min_num_sentences: int | None = 3,
                 min_words_per_line: int | None = 5, max_word_length: int | None = 1000,
                 filter_lorem_ipsum: bool = True, filter_javascript: bool = True, filter_curly_bracket: bool = True,
                 filter_policy: bool = True, rewrite_text: bool = True,
                 applies_to: Sequence[str] | None = PROSE_DOMAINS) -> None:
        super().__init__(applies_to)
        self.remove_citations = remove_citations
        self.filter_no_terminal_punct = filter_no_terminal_punct
        self.end_punctuation = tuple(C4_END_PUNCTUATION if end_punctuation is None else end_punctuation)
        self.min_num_sentences = min_num_sentences
        self.min_words_per_line = min_words_per_line
        self.max_word_length = max_word_length
        self.filter_lorem_ipsum = filter_lorem_ipsum
        self.filter_javascript = filter_javascript
        self.filter_curly_bracket = filter_curly_bracket
        self.filter_policy = filter_policy
        self.rewrite_text = rewrite_text

    def check(self, doc: Document) -> str | None:
        kept, removed, sentences, reason = _c4_scan(
            doc.text, remove_citations=self.remove_citations, filter_no_terminal_punct=self.filter_no_terminal_punct,
            end_punctuation=self.end_punctuation, min_words_per_line=self.min_words_per_line,
            max_word_length=self.max_word_length, filter_javascript=self.filter_javascript,
            filter_policy=self.filter_policy, filter_lorem_ipsum=self.filter_lorem_ipsum,
            filter_curly_bracket=self.filter_curly_bracket, count_sentences_to=self.min_num_sentences or 0)
        if reason is not None:
            return reason
        if self.min_num_sentences and sentences < self.min_num_sentences:
            return "c4_too_few_sentences"
        if not kept:
            return "c4_empty_after_cleaning"
        if self.rewrite_text:
            doc.text = "\n".join(kept)
            doc.metadata["c4_lines_removed"] = removed
        return None


# --- FineWeb -----------------------------------------------------------------------------------

FINEWEB_STOP_CHARS = (".", "'", '"', "!", "?")  # datatrove FineWebQualityFilter


class FineWebQualityFilter(HeuristicFilter):
    """FineWeb's own rules (datatrove ``FineWebQualityFilter`` defaults).

    Reasons: ``fineweb_line_punct_ratio`` (dropped when the fraction of lines ending in
    . ' " ! ? is <= ``line_punct_thr``), ``fineweb_short_line_ratio`` (dropped when the fraction of
    lines of <= ``short_line_length`` chars is >= ``short_line_thr``), ``fineweb_char_dup_ratio``
    (characters in repeated non-empty lines / non-newline characters >= ``char_duplicates_ratio``),
    ``fineweb_newline_ratio`` (newlines per word > ``new_line_ratio``; datatrove calls it list_ratio).
    Lines are ``text.split("\\n")`` unstripped, blank lines included, and the comparisons are inclusive:
    datatrove 0.10.1 drops blank lines before every ratio and compares strictly (``< line_punct_thr``,
    ``> short_line_thr``, ``> char_duplicates_ratio``), and counts spaCy tokens as words; these rules predate
    that release and are kept so earlier curation results reproduce (``benchmarks/curation.py`` lists the
    differences it measures).
    """

    name = "fineweb_quality"

    def __init__(self, line_punct_thr: float | None = 0.12, line_punct_exclude_zero: bool = False,
                 short_line_thr: float | None = 0.67, short_line_length: int = 30,
                 char_duplicates_ratio: float | None = 0.01, new_line_ratio: float | None = 0.3,
                 stop_chars: Sequence[str] | None = None,
                 applies_to: Sequence[str] | None = PROSE_DOMAINS) -> None:
        super().__init__(applies_to)
        self.line_punct_thr = line_punct_thr
        self.line_punct_exclude_zero = line_punct_exclude_zero
        self.short_line_thr = short_line_thr
        self.short_line_length = short_line_length
        self.char_duplicates_ratio = char_duplicates_ratio
        self.new_line_ratio = new_line_ratio
        self.stop_chars = tuple(FINEWEB_STOP_CHARS if stop_chars is None else stop_chars)

    def check(self, doc: Document) -> str | None:
        text = doc.text
        lines = text.split("\n")
        n_lines = len(lines)
        if self.line_punct_thr is not None:
            stop = self.stop_chars
            ratio = sum(1 for line in lines if line.endswith(stop)) / n_lines
            if ratio <= self.line_punct_thr and not (ratio == 0 and self.line_punct_exclude_zero):
                return "fineweb_line_punct_ratio"
        if self.short_line_thr is not None:
            limit = self.short_line_length
            if sum(1 for line in lines if len(line) <= limit) / n_lines >= self.short_line_thr:
                return "fineweb_short_line_ratio"
        if self.char_duplicates_ratio is not None:
            chars = len(text) - (n_lines - 1)
            if chars > 0:
                _, dup_chars = _duplicates([line for line in lines if line.strip()])
                if dup_chars / chars >= self.char_duplicates_ratio:
                    return "fineweb_char_dup_ratio"
        if self.new_line_ratio is not None:
            n_words = len(text.split())
            newlines = n_lines - 1
            if newlines and (not n_words or newlines / n_words > self.new_line_ratio):
                return "fineweb_newline_ratio"
        return None


# --- code --------------------------------------------------------------------------------------

# Extension -> language (the mainstream languages of The Stack v2 / StarCoder training data).
CODE_EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".java": "java", ".js": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript", ".c": "c", ".h": "c",
    ".cc": "c++", ".cpp": "c++", ".cxx": "c++", ".hpp": "c++", ".hh": "c++", ".hxx": "c++", ".cs": "c#",
    ".go": "go", ".rs": "rust", ".php": "php", ".rb": "ruby", ".swift": "swift", ".kt": "kotlin",
    ".kts": "kotlin", ".scala": "scala", ".sh": "shell", ".bash": "shell", ".sql": "sql", ".r": "r",
    ".jl": "julia", ".lua": "lua", ".pl": "perl", ".pm": "perl", ".hs": "haskell", ".m": "objective-c",
    ".mm": "objective-c", ".dart": "dart", ".f90": "fortran", ".f": "fortran", ".ml": "ocaml",
    ".ex": "elixir", ".exs": "elixir", ".erl": "erlang", ".clj": "clojure", ".groovy": "groovy",
    ".v": "verilog", ".sv": "systemverilog", ".vhd": "vhdl", ".ps1": "powershell", ".tex": "tex",
    ".ipynb": "jupyter", ".md": "markdown", ".html": "html", ".css": "css", ".json": "json", ".yaml": "yaml",
    ".yml": "yaml", ".xml": "xml",
}
MAINSTREAM_LANGUAGES = ("python", "java", "javascript", "typescript", "c", "c++", "c#", "go", "rust", "php",
                        "ruby", "swift", "kotlin", "scala", "shell", "sql", "r", "julia", "lua", "perl",
                        "haskell", "fortran")
_LANGUAGE_ALIASES = {"py": "python", "python3": "python", "js": "javascript", "ts": "typescript", "cpp": "c++",
                     "c-plus-plus": "c++", "csharp": "c#", "c-sharp": "c#", "golang": "go", "bash": "shell",
                     "sh": "shell", "zsh": "shell"}
PATH_KEYS = ("path", "file_path", "filepath", "filename", "max_stars_repo_path")
LANGUAGE_KEYS = ("language", "lang", "programming_language")
# CodeParrot's is_autogenerated keywords plus the brief's "generated by" / "do not edit".
AUTOGEN_KEYWORDS = ("auto-generated", "autogenerated", "automatically generated", "generated by", "do not edit")


def normalise_language(name: str) -> str:
    name = str(name).strip().lower().replace(" ", "-")
    return _LANGUAGE_ALIASES.get(name, name)


class CodeFileFilter(HeuristicFilter):
    """Rule-based removal of low-quality code files (The Stack / StarCoder "basic" filters).

    Language: the file extension of ``metadata["path"]`` (or another ``PATH_KEYS`` entry, or the
    document id) through ``extensions``; failing that a ``metadata["language"]`` label. Kept
    languages are ``languages`` (default: mainstream ones). Reasons, in order:
    ``code_unsupported_language``, ``code_empty``, ``code_autogenerated`` (a keyword in the first
    ``autogen_scan_lines`` lines, CodeParrot scans 5), ``code_max_line_length`` (> 1000 chars,
    The Stack), ``code_mean_line_length`` (> 100, The Stack), ``code_alphanum_fraction`` (< 0.25,
    The Stack), ``code_alpha_fraction`` (off by default; StarCoder sets it per extension).
    """

    name = "code_file"

    def __init__(self, languages: Sequence[str] | None = MAINSTREAM_LANGUAGES,
                 extensions: Mapping[str, str] | None = None, max_line_length: int | None = 1000,
                 max_mean_line_length: float | None = 100, min_alphanum_fraction: float | None = 0.25,
                 min_alpha_fraction: float | None = None, autogen_keywords: Sequence[str] | None = AUTOGEN_KEYWORDS,
                 autogen_scan_lines: int = 5, applies_to: Sequence[str] | None = CODE_DOMAINS) -> None:
        super().__init__(applies_to)
        self.languages = None if languages is None else frozenset(normalise_language(x) for x in languages)
        ext = CODE_EXTENSIONS if extensions is None else extensions
        self.extensions = {str(k).lower() if str(k).startswith(".") else "." + str(k).lower(): normalise_language(v)
                           for k, v in ext.items()}
        self.max_line_length = max_line_length
        self.max_mean_line_length = max_mean_line_length
        self.min_alphanum_fraction = min_alphanum_fraction
        self.min_alpha_fraction = min_alpha_fraction
        self.autogen_keywords = tuple(autogen_keywords or ())
        self.autogen_scan_lines = autogen_scan_lines

    def language(self, doc: Document) -> str | None:
        meta = doc.metadata
        for key in PATH_KEYS:
            if meta.get(key):
                ext = os.path.splitext(str(meta[key]))[1].lower()
                if ext in self.extensions:
                    return self.extensions[ext]
                break
        else:
            ext = os.path.splitext(doc.id)[1].lower()
            if ext in self.extensions:
                return self.extensions[ext]
        for key in LANGUAGE_KEYS:
            if meta.get(key):
                return normalise_language(meta[key])
        return None

    def check(self, doc: Document) -> str | None:
        if self.languages is not None and self.language(doc) not in self.languages:
            return "code_unsupported_language"
        text = doc.text
        if not text.strip():
            return "code_empty"
        if self.autogen_keywords and self.autogen_scan_lines > 0:
            head = "\n".join(text.split("\n", self.autogen_scan_lines)[:self.autogen_scan_lines])
            if _keyword_regex(self.autogen_keywords).search(head):
                return "code_autogenerated"
        if self.max_line_length is not None or self.max_mean_line_length is not None:
            lengths = list(map(len, text.splitlines()))
            if self.max_line_length is not None and max(lengths) > self.max_line_length:
                return "code_max_line_length"
            if self.max_mean_line_length is not None and sum(lengths) / len(lengths) > self.max_mean_line_length:
                return "code_mean_line_length"
        if self.min_alphanum_fraction is not None and (
                len(_NON_ALNUM.sub("", text)) / len(text) < self.min_alphanum_fraction):
            return "code_alphanum_fraction"
        if self.min_alpha_fraction is not None and len(_NON_ALPHA.sub("", text)) / len(text) < self.min_alpha_fraction:
            return "code_alpha_fraction"
        return None


# --- the paper's colon lesson ------------------------------------------------------------------


class ColonEndingMathFilter(HeuristicFilter):
    """Drop documents whose text ends with a colon (``math_colon_ending``).

    The paper's lesson (PAPER.md §2): math pages cut off after "Proof:" / "Solution:" taught the model
    to emit end-of-sequence right after ':'. Trailing whitespace and markdown emphasis (``*``, ``_``)
    are ignored, so "**Solution:**" counts. Applies to every domain but ``code`` unless ``applies_to`` says
    otherwise, and never to source code: a text whose last line is a code block opener (indented, or
    starting with a Python block keyword: ``def``, ``if``, ``else``, ...), or a comment in a text whose
    lines are mostly code. About one in five Python chunks of 1–4 KB ends with a colon, so on unlabelled
    input (domain ``web``) the rule used to drop code, not truncated math (``code_openers=False`` restores
    that).
    """

    name = "colon_ending"
    _CODE_OPENER = re.compile(r"^(?:[ \t]+(?![-*+•]|\d+[.)])\S|(?:async\s+)?(?:def|class|if|elif|else|for|while|try|"
                              r"except|finally|with|match|case)\b)")
    _COMMENT = re.compile(r"^\s*(?:#|//)")
    _CODE_LINE = re.compile(r"^(?:[ \t]{2,}\S|(?:def|class|import|from|return|if|for|while|with|try|except)\b)|[)\]}]:?$|"
                            r"\w\.\w+\(|\s=\s|;$")

    def __init__(self, colons: Sequence[str] = (":", "："), ignore_trailing: str = " \t\r\n\f\v*_",
                 applies_to: Sequence[str] | None = ("!code",), code_openers: bool = True) -> None:
        super().__init__(applies_to)
        self.colons = tuple(colons)
        self.ignore_trailing = ignore_trailing
        self.code_openers = code_openers

    def check(self, doc: Document) -> str | None:
        text = doc.text.rstrip(self.ignore_trailing)
        if not text.endswith(self.colons):
            return None
        if self.code_openers and self._is_code(text):
            return None
        return "math_colon_ending"

    def _is_code(self, text: str) -> bool:
        last = text[text.rfind("\n") + 1:]
        if self._CODE_OPENER.match(last):
            return True
        if not self._COMMENT.match(last):
            return False
        lines = [line for line in text.splitlines()[-40:] if line.strip()]
        code = sum(1 for line in lines if self._CODE_LINE.search(line) and not self._COMMENT.match(line))
        return code >= 0.3 * len(lines)


# --- the stage's default chain -----------------------------------------------------------------


def default_heuristic_filters(prose_domains: Sequence[str] | None = PROSE_DOMAINS) -> list[HeuristicFilter]:
    """Stage 1 with public defaults: the colon rule, code rules, then FineWeb's web-text chain in
    FineWeb's order (Gopher repetition, Gopher quality, C4 without the terminal-punctuation line rule,
    FineWeb quality) over ``prose_domains``.

    Note: on competition-math text the prose chain is harsh (C4's curly-bracket rule drops any page
    with LaTeX braces such as ``\\boxed{}``; Gopher's 50-word minimum drops short problems), so a
    recipe with curated math sources may prefer ``prose_domains=["web"]``.
    """
    prose = list(prose_domains) if prose_domains is not None else None
    return [ColonEndingMathFilter(), CodeFileFilter(), GopherRepetitionFilter(applies_to=prose),
            GopherQualityFilter(applies_to=prose), C4QualityFilter(filter_no_terminal_punct=False, applies_to=prose),
            FineWebQualityFilter(applies_to=prose)]
