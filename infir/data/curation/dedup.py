"""Global MinHash deduplication (curation stage 3): exact pass, then MinHash-LSH near-duplicate clustering.

Pipeline, following FineWeb/datatrove conventions where they do not cost recall:

1. Tokenise (:func:`tokens`): NFKC, lowercase, and by default ``code_aware`` tokens, where identifiers,
   operators and brackets are tokens of their own (``self.x(a)`` -> ``self . x ( a )``) and prose punctuation
   separates like whitespace, so reformatting code and re-punctuating prose cost nothing. ``words`` is the
   earlier tokenisation (punctuation deleted: ``selfxa``), under which an edited or re-spaced
   copy of code loses far more Jaccard than the same edit to prose. Shingles are token 5-grams.
2. MinHash signatures, computed in batches with numpy: every token is hashed once with xxh3, a 5-gram's hash
   is an odd-multiplier linear combination of its tokens' hashes (vectorised over the whole batch), and the
   permutations are datasketch's own (same ``seed``/``num_perm``/``scheme`` parameters), so each row equals
   what ``datasketch.MinHash(..., hashfunc=shingle_hash)`` builds over the same shingles, bit for bit.
3. :class:`MinHashDeduplicator`: exact duplicates (hash of the token sequence) first, then LSH banding (the
   candidate pairs ``datasketch.MinHashLSH`` gives, found by sorting band keys in numpy; tested against it)
   with bands/rows from datasketch's FP/FN optimisation, weighted so that LSH misses
   few pairs at the threshold; LSH candidates are kept if at least :func:`min_agreement` signature positions
   agree, the count that rejects at most ``fn_rate`` of the pairs at exactly the threshold (the binomial
   tail), rather than "estimated Jaccard >= threshold", which rejects half of them; union-find turns verified
   pairs into clusters. ``add`` may be called once per shard, so the clusters are global; the survivor of a
   cluster is its smallest doc id, which does not depend on the order shards arrive in.

Only signatures (numpy), 128-bit exact keys and LSH band keys are held, never document text.

Permutation scheme (datasketch >= 2.0 has three): the default ``affine64`` (a*h+b mod 2^64 after a
MurmurHash3 pre-mix) gives uint64 signatures and avoids the bias of ``legacy`` ((a*h+b) mod (2^61-1),
truncated to 32 bits, the only scheme before datasketch 2.0), which we still reproduce bit for bit for old
indexes; ``affine32`` halves signature memory and is ~25% faster. Documents that normalise to nothing all
share one exact key (and the empty sketch), so they form one exact-duplicate cluster.

Measured on ``benchmarks/near_dup_corpus.py`` (50k documents, 2,500 planted near duplicates, half code): see
that module and the README for the recall/precision of this configuration against the earlier one.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import re
import string
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np
import xxhash
from datasketch import LeanMinHash, MinHash
from datasketch.lsh import _optimal_param

from infir.data.curation.base import StageOutput
from infir.data.documents import Document

log = logging.getLogger(__name__)

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"
CLUSTER_KEY = "dedup_cluster"

SCHEMES = ("affine64", "affine32", "legacy")
DEFAULT_SCHEME = "affine64"
MAX_NGRAM = 64

_M64 = (1 << 64) - 1
_MASK32 = np.uint64(0xFFFFFFFF)
_MERSENNE = np.uint64((1 << 61) - 1)
_SHIFT61 = np.uint64(61)
_SHIFT32 = np.uint64(32)
_ONE = np.uint64(1)
# Shingles per permutation chunk: (num_perm, 4096) uint64 is ~3.5 MiB, so a chunk stays in cache.
_CHUNK_SHINGLES = 4096
# Documents per internal batch of the text -> shingle-hash step (~1 MB of text for 1 KB documents).
_DOC_BATCH = 1024

# Odd multipliers that combine word hashes into an order-sensitive shingle hash: two different word
# sequences of the same length collide only if sum_k C_k (h_k - h'_k) = 0 mod 2^64, i.e. with probability
# ~2^-64; _LENGTH_SALT keeps shingles of different lengths (short documents) apart.
_COMBINE_RNG = np.random.default_rng(0x1F2E3D4C)
_COMBINE = _COMBINE_RNG.integers(0, 1 << 63, MAX_NGRAM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_LENGTH_SALT = _COMBINE_RNG.integers(0, 1 << 63, MAX_NGRAM + 1, dtype=np.uint64)
_COMBINE_INT = [int(c) for c in _COMBINE]
_LENGTH_SALT_INT = [int(c) for c in _LENGTH_SALT]

# MurmurHash3 finalizers (the pre-mix datasketch's affine schemes apply to every input hash).
_FMIX64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))


# ----------------------------------------------------------------------------------------------- text

# Tokenizers: how a text becomes the token sequence whose n-grams are the shingles (and whose join is the exact key).
CODE_AWARE, WORDS = "code_aware", "words"
TOKENIZERS = (CODE_AWARE, WORDS)
DEFAULT_TOKENIZER = CODE_AWARE


def _check_tokenizer(tokenizer: str) -> None:
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")


@functools.cache
def _normalization_table() -> dict[int, str | None]:
    """Delete every Unicode punctuation code point (category P*) and ASCII symbol; turn non-ASCII whitespace
    into a space, so ``bytes.split()`` (ASCII whitespace only, and much faster than ``str.split``) sees it."""
    table: dict[int, str | None] = {}
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if unicodedata.category(ch).startswith("P"):
            table[cp] = None
        elif ch.isspace() and ch not in " \t\n\v\f\r":
            table[cp] = " "
    table.update({ord(c): None for c in string.punctuation})
    return table


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().translate(_normalization_table())


def normalize_text(text: str, tokenizer: str = DEFAULT_TOKENIZER) -> str:
    """The text as its tokens joined by single spaces: what shingles are cut from and exact keys hash.

    ``words``: NFKC, lowercase, delete punctuation, collapse whitespace ("don't" -> "dont", ``self.x(a)`` ->
    "selfxa"; datatrove's ``simplify_text`` replaces punctuation with a space instead). ``code_aware``: see
    :func:`tokens`.
    """
    _check_tokenizer(tokenizer)
    if tokenizer == WORDS:
        return " ".join(_clean(text).split())
    return b" ".join(_code_tokens(text)).decode()


_ASCII_PUNCTUATION = string.punctuation.encode()
_ASCII_CHARS = frozenset(map(chr, range(128)))


def _normalized_words(text: str) -> list[bytes]:
    """UTF-8 words of :func:`normalize_text` with ``tokenizer="words"`` (same result: the table leaves only
    ASCII whitespace).

    ``str.translate`` with the full Unicode table costs a dict lookup per character; instead the
    few distinct non-ASCII characters present are replaced with ``str.replace`` and ASCII
    punctuation is deleted by ``bytes.translate``, both in C.
    """
    folded = unicodedata.normalize("NFKC", text).lower()
    if not folded.isascii():  # replace only the few distinct non-ASCII characters present
        table = _normalization_table()
        for ch in set(folded).difference(_ASCII_CHARS):
            replacement = table.get(ord(ch), ch)
            if replacement != ch:
                folded = folded.replace(ch, replacement or "")
    return folded.encode().translate(None, _ASCII_PUNCTUATION).split()


# code_aware, ASCII: separators (deleted like whitespace), folded quotes, and the symbols that become tokens.
_SEPARATORS = b",;:!?"
_QUOTES = b"'`"
_TOKEN_SYMBOLS = [bytes([c]) for c in _ASCII_PUNCTUATION if c not in _SEPARATORS + _QUOTES and c != ord("_")]
_TOKEN_SYMBOL_PADDED = [(s, b" " + s + b" ") for s in _TOKEN_SYMBOLS]  # disjoint symbols: order does not matter
_CODE_BYTES_TABLE = bytes(32 if (c in _SEPARATORS or 0x1C <= c <= 0x1F) else ord('"') if c in _QUOTES else c
                          for c in range(256))
# A "word byte" is anything but ASCII whitespace and ASCII punctuation other than "_" (so UTF-8 continuation
# bytes, i.e. letters of any script, are word bytes). A "." is a token only between two word bytes (``a.b``,
# ``3.14``); elsewhere (sentence ends, ellipses, ``.5``-style edges) it separates like whitespace.
_WORD_BYTE = rb"[^\s!-/:-@\[-^`{-~]"
_LONE_DOT = re.compile(rb"\.(?:(?<!" + _WORD_BYTE + rb"\.)|(?!" + _WORD_BYTE + rb"))")
_DASH_RUN = re.compile(rb"-{2,}")
_NON_ASCII_QUOTES = frozenset("\u201a\u201e\u301d\u301e\u301f\u2032\u2033\u2034\u2035\u2036\u2037")


@functools.lru_cache(maxsize=65536)
def _code_char(ch: str) -> str:
    """code_aware replacement of one non-ASCII character: whitespace and punctuation other than quotes and
    dashes -> a space (separators), quotes -> '"', dashes and the minus sign -> '-'; anything else (letters,
    marks, digits, symbols such as "€") is part of a word, as in the ``words`` tokenizer."""
    cat = unicodedata.category(ch)
    if cat in ("Pi", "Pf") or ch in _NON_ASCII_QUOTES:
        return '"'
    if cat == "Pd" or ch == "\u2212":
        return "-"
    if cat.startswith("P") or ch.isspace():
        return " "
    return ch


def _code_tokens(text: str) -> list[bytes]:
    """UTF-8 tokens of the ``code_aware`` tokenizer; see :func:`tokens`. Only C-level passes per document
    (``bytes.translate``/``replace``/``split`` and two rare regex substitutions), no per-token Python work."""
    folded = unicodedata.normalize("NFKC", text).lower()
    if not folded.isascii():
        for ch in set(folded).difference(_ASCII_CHARS):
            replacement = _code_char(ch)
            if replacement != ch:
                folded = folded.replace(ch, replacement)
    b = folded.encode().translate(_CODE_BYTES_TABLE)
    if b"." in b:
        b = b.replace(b". ", b"  ").replace(b".\n", b" \n")  # sentence ends, without the regex
        if b"." in b:
            b = _LONE_DOT.sub(b" ", b)
    if b"--" in b:
        b = _DASH_RUN.sub(b"-", b)
    for symbol, padded in _TOKEN_SYMBOL_PADDED:
        if symbol in b:
            b = b.replace(symbol, padded)
    return b.split()


def tokens(text: str, tokenizer: str = DEFAULT_TOKENIZER) -> list[bytes]:
    """UTF-8 tokens of ``text`` (NFKC, lowercased) under ``tokenizer``; shingles are n-grams of these.

    ``code_aware`` (default): identifiers/words, and every operator, bracket and other symbol as its own
    token (``self.x(a)`` -> ``self . x ( a )``, ``x=1`` and ``x = 1`` -> ``x = 1``), so reformatting code costs
    nothing and an edit to one identifier costs only the n-grams through it. Prose punctuation that code does
    not need for its structure separates like whitespace (``, ; : ! ?``, and a ``.`` that is not between two
    word characters, e.g. a sentence end), all quote characters fold to ``"`` (straight/curly/backtick), runs of
    dashes fold to ``-``; so prose punctuation edits cost nothing, as with ``words``.

    ``words``: the earlier behaviour: punctuation deleted (not spaced, as datatrove does), whitespace split;
    ``self.x(a)`` -> ``selfxa`` and ``x=1`` -> ``x1`` but ``x = 1`` -> ``x 1``, so code edits and reformatting
    cost far more Jaccard than the same edit to prose.
    """
    _check_tokenizer(tokenizer)
    return _code_tokens(text) if tokenizer == CODE_AWARE else _normalized_words(text)


def shingles(text: str, ngram: int = 5, tokenizer: str = DEFAULT_TOKENIZER) -> list[str]:
    """Token n-grams (tokens joined by spaces) of the text; a text shorter than ``ngram`` tokens is one shingle,
    one without tokens has none."""
    norm = normalize_text(text, tokenizer)
    if not norm:
        return []
    words = norm.split(" ")
    if len(words) < ngram:
        return [norm]
    return [" ".join(words[i:i + ngram]) for i in range(len(words) - ngram + 1)]


def shingle_hash(shingle: str | bytes) -> int:
    """64-bit hash of one shingle (space-separated words), the reference for the vectorised path.

    Usable as ``datasketch.MinHash(hashfunc=...)`` with ``scheme="affine64"``; see :func:`shingle_hash32`.
    """
    words = (shingle.encode() if isinstance(shingle, str) else shingle).split(b" ")
    acc = _LENGTH_SALT_INT[len(words)]
    for c, w in zip(_COMBINE_INT, words):
        acc += c * xxhash.xxh3_64_intdigest(w)
    return acc & _M64


def shingle_hash32(shingle: str | bytes) -> int:
    """32-bit fold of :func:`shingle_hash`, the input hash of the ``affine32`` and ``legacy`` schemes."""
    h = shingle_hash(shingle)
    return (h ^ (h >> 32)) & 0xFFFFFFFF


def hashfunc_for(scheme: str):
    """The datasketch ``hashfunc`` that makes ``MinHash(scheme=scheme)`` agree bit for bit with ours."""
    _check_scheme(scheme)
    return shingle_hash if scheme == "affine64" else shingle_hash32


def exact_key(text: str, tokenizer: str = DEFAULT_TOKENIZER) -> int:
    """128-bit hash of the token sequence: equal keys mean exact duplicates after normalisation."""
    return xxhash.xxh3_128_intdigest(normalize_text(text, tokenizer).encode())


# ----------------------------------------------------------------------------------------- signatures


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")


def signature_dtype(scheme: str = DEFAULT_SCHEME) -> type[np.unsignedinteger]:
    _check_scheme(scheme)
    return np.uint32 if scheme == "affine32" else np.uint64


@functools.cache
def _permutations(num_perm: int, seed: int, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) taken from datasketch itself, so our signatures live in the same space as its MinHash."""
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=scheme).permutations
    dtype = signature_dtype(scheme)
    a, b = np.ascontiguousarray(a, dtype=dtype), np.ascontiguousarray(b, dtype=dtype)
    a.flags.writeable = b.flags.writeable = False
    return a, b


def _fmix64(h: np.ndarray) -> np.ndarray:
    s, m1, m2 = _FMIX64
    h = h ^ (h >> s)
    h *= m1
    h ^= h >> s
    h *= m2
    h ^= h >> s
    return h


def _fmix32(h: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2 = _FMIX32
    h = h ^ (h >> s1)
    h *= m1
    h ^= h >> s2
    h *= m2
    h ^= h >> s1
    return h


def _mod_mersenne61(x: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """``x %= 2^61-1`` in place without numpy's slow integer division: t = (x & p) + (x >> 61) is < p + 8
    and congruent to x, and t mod p = (t + ((t+1) >> 61)) & p."""
    hi = np.right_shift(x, _SHIFT61, out=tmp)
    x &= _MERSENNE
    x += hi
    np.add(x, _ONE, out=hi)
    hi >>= _SHIFT61
    x += hi
    x &= _MERSENNE
    return x


def _check_ngram(ngram: int) -> None:
    if not 1 <= ngram <= MAX_NGRAM:
        raise ValueError(f"ngram must be in [1, {MAX_NGRAM}], got {ngram}")


def _shingle_hashes(texts: Sequence[str], ngram: int, with_keys: bool = True,
                    tokenizer: str = DEFAULT_TOKENIZER) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(64-bit hash of every shingle, shingles per document, exact keys if ``with_keys``) for a batch.

    The only per-document Python work is normalise/encode/split; words are hashed by ``map`` over xxh3
    (no Python frame per word) and the n-gram combination runs in numpy over the whole batch.
    """
    _check_ngram(ngram)
    _check_tokenizer(tokenizer)
    tokenize = _code_tokens if tokenizer == CODE_AWARE else _normalized_words
    word_lists: list[list[bytes]] = []
    keys: list[int] = []
    key_fn = xxhash.xxh3_128_intdigest
    for text in texts:
        words = tokenize(text)
        if with_keys:
            keys.append(key_fn(b" ".join(words)))
        word_lists.append(words)
    n_docs = len(word_lists)
    lens = np.fromiter(map(len, word_lists), dtype=np.int64, count=n_docs)
    total = int(lens.sum())
    wh = np.zeros(total + ngram, dtype=np.uint64)  # zero padding: windows may run past the end
    wh[:total] = np.fromiter(map(xxhash.xxh3_64_intdigest, chain.from_iterable(word_lists)), dtype=np.uint64,
                             count=total)
    long_counts = np.maximum(lens - ngram + 1, 0)
    counts = np.where(lens >= ngram, long_counts, np.minimum(lens, 1))
    word_start = np.zeros(n_docs, dtype=np.int64)
    np.cumsum(lens[:-1], out=word_start[1:])

    # acc[i] = hash of the n-gram starting at word i (garbage where it runs past its document; masked below).
    short = np.flatnonzero((lens > 0) & (lens < ngram))
    short_acc = _LENGTH_SALT[lens[short]]
    acc = np.full(total, _LENGTH_SALT[ngram], dtype=np.uint64)
    tmp = np.empty(total, dtype=np.uint64)
    for k in range(ngram):
        acc += np.multiply(wh[k:k + total], _COMBINE[k], out=tmp)
        if short.size and k < ngram - 1:
            take = lens[short] > k
            short_acc[take] += _COMBINE[k] * wh[word_start[short[take]] + k]

    # A window is valid unless it starts among the last ngram-1 words of its document (all of a short one);
    # the valid windows, in order, are the long documents' shingles, in order.
    valid = np.ones(total, dtype=bool)
    word_end = word_start + lens
    for k in range(1, ngram):
        idx = word_end - k
        valid[idx[idx >= word_start]] = False
    long_hashes = acc[valid]
    if not short.size:
        return long_hashes, counts, keys
    # Short documents contribute one whole-text shingle each: shift the long ones to make room for them.
    out = np.empty(int(counts.sum()), dtype=np.uint64)
    is_short = np.zeros(n_docs, dtype=np.int64)
    is_short[short] = 1
    shorts_before = np.cumsum(is_short) - is_short
    out[np.arange(len(long_hashes)) + np.repeat(shorts_before, long_counts)] = long_hashes
    out[(np.cumsum(counts) - counts)[short]] = short_acc
    return out, counts, keys


def _signatures_from_hashes(hashes: np.ndarray, counts: np.ndarray, num_perm: int, seed: int,
                            scheme: str) -> np.ndarray:
    """Apply datasketch's permutations to every shingle hash and min-reduce per document, chunk by chunk."""
    a, b = _permutations(num_perm, seed, scheme)
    dtype = signature_dtype(scheme)
    empty = np.iinfo(np.uint32).max if scheme != "affine64" else np.iinfo(np.uint64).max
    sigs = np.full((len(counts), num_perm), empty, dtype=dtype)
    if scheme == "affine64":
        hv = _fmix64(hashes)
    else:
        folded = (hashes ^ (hashes >> _SHIFT32)) & _MASK32
        hv = _fmix32(folded.astype(np.uint32)) if scheme == "affine32" else folded
    doc_of = np.repeat(np.arange(len(counts)), counts)
    seg_starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[counts > 0]
    # (num_perm, chunk) layout: each permutation is one long contiguous row, which numpy vectorises ~3x better
    # than (chunk, num_perm) with its 112-element inner loops.
    buf = np.empty((num_perm, _CHUNK_SHINGLES), dtype=dtype)
    tmp = np.empty_like(buf) if scheme == "legacy" else None
    a_col, b_col = a[:, None], b[:, None]
    for s0 in range(0, len(hv), _CHUNK_SHINGLES):
        s1 = min(s0 + _CHUNK_SHINGLES, len(hv))
        # Segments: the chunk start plus every document start inside the chunk (a long document may span
        # chunks; its partial minima are merged into its row with np.minimum below).
        lo, hi = np.searchsorted(seg_starts, [s0 + 1, s1])
        seg = np.concatenate(([0], seg_starts[lo:hi] - s0))
        ph = np.multiply(a_col, hv[s0:s1], out=buf[:, :s1 - s0])
        ph += b_col
        if scheme == "legacy":
            # datasketch: ((a*h + b) wrapped to 64 bits) % (2^61-1), truncated to 32 bits.
            _mod_mersenne61(ph, tmp[:, :s1 - s0])
            ph &= _MASK32
        mins = np.minimum.reduceat(ph, seg, axis=1).T
        rows = doc_of[s0 + seg]
        sigs[rows] = np.minimum(sigs[rows], mins)
    return sigs


def signatures_and_keys(texts: Sequence[str], num_perm: int = 112, ngram: int = 5, seed: int = 1,
                        scheme: str = DEFAULT_SCHEME, with_keys: bool = True,
                        tokenizer: str = DEFAULT_TOKENIZER) -> tuple[np.ndarray, list[int]]:
    """Signatures plus :func:`exact_key` of every text (if ``with_keys``), from one tokenisation pass.

    Works through ``_DOC_BATCH`` documents at a time, which bounds the per-word temporaries and keeps them
    cache-sized whatever the input length.
    """
    _check_scheme(scheme)
    _check_tokenizer(tokenizer)
    _check_ngram(ngram)
    if not isinstance(texts, (list, tuple)):
        texts = list(texts)
    sigs = np.empty((len(texts), num_perm), dtype=signature_dtype(scheme))
    keys: list[int] = []
    for i in range(0, len(texts), _DOC_BATCH):
        hashes, counts, batch_keys = _shingle_hashes(texts[i:i + _DOC_BATCH], ngram, with_keys, tokenizer)
        sigs[i:i + len(counts)] = _signatures_from_hashes(hashes, counts, num_perm, seed, scheme)
        keys.extend(batch_keys)
    return sigs, keys


def minhash_signatures(texts: Sequence[str], num_perm: int = 112, ngram: int = 5, seed: int = 1,
                       scheme: str = DEFAULT_SCHEME, tokenizer: str = DEFAULT_TOKENIZER) -> np.ndarray:
    """MinHash signatures, shape ``(len(texts), num_perm)``, uint64 (uint32 for ``scheme="affine32"``).

    Row i equals ``MinHash(num_perm, seed, scheme=scheme, hashfunc=hashfunc_for(scheme))`` updated with
    ``shingles(texts[i], ngram, tokenizer)`` (encoded), so ``to_minhash`` objects can be compared with, and
    indexed next to, sketches datasketch builds itself. A text with no shingles gets the empty sketch (all max
    values).
    """
    return signatures_and_keys(texts, num_perm, ngram, seed, scheme, with_keys=False, tokenizer=tokenizer)[0]


def to_minhash(signature: np.ndarray, seed: int = 1, scheme: str = DEFAULT_SCHEME) -> LeanMinHash:
    """A datasketch ``LeanMinHash`` over one signature row (no copy of the permutations is made)."""
    return LeanMinHash(seed=seed, hashvalues=signature, scheme=scheme)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray | float:
    """Fraction of agreeing signature positions: the MinHash estimate of Jaccard (as ``MinHash.jaccard``)."""
    return np.count_nonzero(sig_a == sig_b, axis=-1) / sig_a.shape[-1]


# ------------------------------------------------------------------------------------------------ LSH


def candidate_probability(s: float | np.ndarray, b: int, r: int) -> float | np.ndarray:
    """The LSH S-curve: probability that a pair with Jaccard ``s`` shares at least one of ``b`` bands of ``r``."""
    return 1.0 - (1.0 - np.asarray(s, dtype=float) ** r) ** b


# Verification: a candidate pair is a duplicate when at least min_agreement(t, num_perm, fn_rate) signature
# positions agree; fn_rate is the share of pairs at exactly Jaccard t that this check may reject. With t = 0.8,
# 112 permutations and 0.05: k = 82 (estimate >= 0.732), FN 3.1 % at J = 0.8; it accepts 26 % of candidates at
# J = 0.7, 4.0 % at 0.65, 0.24 % at 0.6. (The earlier rule, estimate >= t, i.e. k = ceil(t * num_perm) = 90,
# rejected 48 % of the pairs at exactly t and 7 % at J = 0.85.)
DEFAULT_FN_RATE = 0.05
# LSH: weigh missed candidates 199x more than extra ones in datasketch's S-curve optimisation -> 18 bands x
# 6 rows at t = 0.8, 112 permutations: P(candidate) = 0.996 at J = 0.8 (FineWeb's 14 x 8: 0.92), 0.89 at 0.7,
# 0.25 at 0.5. Extra candidates cost a vectorised agreement count each, never precision (verification decides).
DEFAULT_FP_WEIGHT, DEFAULT_FN_WEIGHT = 0.005, 0.995


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P[Binomial(n, p) <= k], summed in log space (exact to float rounding for any ``n``)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    lp, lq, ln = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    return min(1.0, math.fsum(math.exp(ln - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
                              for i in range(k + 1)))


def min_agreement(threshold: float, num_perm: int, fn_rate: float | None = DEFAULT_FN_RATE) -> int:
    """Signature agreements a candidate needs to count as a duplicate: the largest ``k`` with
    ``P[Binomial(num_perm, threshold) < k] <= fn_rate``.

    The agreement count of a pair with Jaccard J is Binomial(num_perm, J), so this ``k`` rejects at most
    ``fn_rate`` of the pairs at exactly the threshold (fewer above it) and is the strictest such ``k`` (fewest
    pairs below the threshold accepted). ``fn_rate=None`` gives the earlier rule, estimated Jaccard >= threshold
    (``ceil(threshold * num_perm)``), which rejects about half of the pairs at the threshold.

    Defaults (t = 0.8, 112 permutations, fn_rate 0.05): k = 82, rejecting 3.1 % of the pairs at J = 0.8 and
    accepting 26 % at J = 0.7, 4.0 % at 0.65 (the earlier k = 90: 48 % rejected at 0.8, 0.9 % accepted at 0.7).
    """
    if fn_rate is None:
        return int(np.ceil(threshold * num_perm - 1e-9))
    if not 0.0 < fn_rate < 1.0:
        raise ValueError(f"fn_rate must be in (0, 1) or None, got {fn_rate!r}")
    k = 0
    while k < num_perm and binomial_cdf(k, num_perm, threshold) <= fn_rate:  # P[X < k + 1] <= fn_rate
        k += 1
    return k


def acceptance_probability(jaccard: float, num_perm: int, min_agree: int) -> float:
    """P[a pair with this Jaccard passes verification] = P[Binomial(num_perm, jaccard) >= min_agree]."""
    return 1.0 - binomial_cdf(min_agree - 1, num_perm, jaccard)


@functools.cache
def choose_bands_rows(threshold: float, num_perm: int, fp_weight: float = 0.5,
                      fn_weight: float = 0.5) -> tuple[int, int]:
    """Bands and rows minimising the weighted FP/FN areas under the S-curve (datasketch's optimisation)."""
    b, r = _optimal_param(threshold, num_perm, fp_weight, fn_weight)
    log.info("MinHash LSH: threshold %.3f, num_perm %d -> b=%d bands x r=%d rows (P(candidate | s=t) = %.3f)",
             threshold, num_perm, b, r, float(candidate_probability(threshold, b, r)))
    return b, r


class _Rows:
    """An append-only numpy array with amortised O(1) growth (signatures, union-find parents)."""

    def __init__(self, width: int | None, dtype: type) -> None:
        self._shape_tail = () if width is None else (width,)
        self._data = np.empty((1024, *self._shape_tail), dtype=dtype)
        self.n = 0

    def extend(self, rows: np.ndarray) -> None:
        need = self.n + len(rows)
        if need > len(self._data):
            grown = np.empty((max(need, 2 * len(self._data)), *self._shape_tail), dtype=self._data.dtype)
            grown[:self.n] = self._data[:self.n]
            self._data = grown
        self._data[self.n:need] = rows
        self.n = need

    @property
    def data(self) -> np.ndarray:
        return self._data[:self.n]


class MinHashDeduplicator:
    """Global near-duplicate clustering over any number of ``add`` calls (one per shard or batch).

    Per added document: if its exact key was seen, it joins that document's cluster (and is not put in the
    LSH index, its signature being identical); otherwise the LSH index is queried, candidates with at least
    :attr:`min_agree` agreeing signature positions (:func:`min_agreement`: at most ``fn_rate`` of the pairs at
    exactly ``threshold`` are rejected) are unioned with it, and it is inserted. Clusters are the connected
    components of these pairs, which do not depend on insertion order; the survivor is the smallest doc id.

    ``tokenizer`` (``code_aware`` | ``words``, see :func:`tokens`) only matters to :meth:`add_texts` and
    :meth:`signatures_and_keys`: signatures given to :meth:`add` must have been computed with the same one.
    The earlier behaviour is ``tokenizer="words", fn_rate=None, fp_weight=0.05, fn_weight=0.95``.
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 112, ngram: int = 5, seed: int = 1,
                 scheme: str = DEFAULT_SCHEME, fp_weight: float = DEFAULT_FP_WEIGHT,
                 fn_weight: float = DEFAULT_FN_WEIGHT, tokenizer: str = DEFAULT_TOKENIZER,
                 fn_rate: float | None = DEFAULT_FN_RATE) -> None:
        _check_scheme(scheme)
        _check_tokenizer(tokenizer)
        _check_ngram(ngram)
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be a Jaccard similarity in (0, 1], got {threshold!r}")
        if num_perm < 2:
            raise ValueError(f"num_perm must be >= 2, got {num_perm!r}")
        self.threshold, self.num_perm, self.ngram, self.seed, self.scheme = threshold, num_perm, ngram, seed, scheme
        self.tokenizer, self.fn_rate = tokenizer, fn_rate
        self.bands, self.rows = choose_bands_rows(threshold, num_perm, fp_weight, fn_weight)
        self.min_agree = min_agreement(threshold, num_perm, fn_rate)
        log.info("MinHash verification: >= %d of %d agreeing positions (rejects %.3f of pairs at J=%.2f, accepts "
                 "%.3f at J=%.2f); tokenizer %s", self.min_agree, num_perm,
                 1.0 - acceptance_probability(threshold, num_perm, self.min_agree), threshold,
                 acceptance_probability(max(threshold - 0.1, 0.0), num_perm, self.min_agree),
                 max(threshold - 0.1, 0.0), tokenizer)
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._sigs = _Rows(num_perm, signature_dtype(scheme))
        self._parent = _Rows(None, np.int64)
        self._exact_first: dict[int, int] = {}  # exact key -> first index with it
        self._exact_of: dict[int, int] = {}  # index -> exact key, only for documents in an exact group
        self._clusters: dict[str, list[str]] | None = None  # cache, reset by add()
        self._stats = {"docs": 0, "exact_duplicates": 0, "lsh_candidates": 0, "verified_pairs": 0}
        self._lsh_members: list[int] = []  # documents that are not an exact copy of an earlier one
        self._linked = True  # LSH unions are made lazily, once, over all added documents (see _link)
        # odd multipliers combining a band's rows into its key: distinct bands collide with probability ~2^-64
        self._band_combine = np.random.default_rng(0x4C534842).integers(0, 1 << 63, self.rows, dtype=np.uint64) \
            * np.uint64(2) + np.uint64(1)

    def __len__(self) -> int:
        return len(self._ids)

    # -- building ---------------------------------------------------------------------------------------

    def add(self, doc_ids: Sequence[str], signatures: np.ndarray, exact_keys: Sequence[int] | None = None) -> None:
        """Index one batch. Doc ids must be unique across all calls; ``exact_keys`` (see :func:`exact_key`)
        enables the exact pass, without them every duplicate is found (and reported) as a near duplicate."""
        signatures = np.asarray(signatures)
        if signatures.ndim != 2 or signatures.shape != (len(doc_ids), self.num_perm):
            raise ValueError(f"signatures must have shape ({len(doc_ids)}, {self.num_perm}), got {signatures.shape}")
        if signatures.dtype != signature_dtype(self.scheme):
            raise ValueError(f"scheme {self.scheme!r} signatures are {np.dtype(signature_dtype(self.scheme))}, "
                             f"got {signatures.dtype}")
        if exact_keys is not None and len(exact_keys) != len(doc_ids):
            raise ValueError("exact_keys must have one key per doc id")
        seen: set[str] = set()
        for d in doc_ids:  # validate before touching any state
            if d in self._index or d in seen:
                raise ValueError(f"duplicate doc id {d!r}: ids must be unique across all add() calls")
            seen.add(d)
        base = len(self._ids)
        self._index.update(zip(doc_ids, range(base, base + len(doc_ids))))
        self._ids.extend(doc_ids)
        self._clusters = None
        self._sigs.extend(signatures)
        self._parent.extend(np.arange(base, base + len(doc_ids), dtype=np.int64))
        for i in range(len(doc_ids)):
            idx = base + i
            if exact_keys is not None:
                key = exact_keys[i]
                first = self._exact_first.setdefault(key, idx)
                if first != idx:
                    self._exact_of[idx] = self._exact_of[first] = key
                    self._union(first, idx)
                    self._stats["exact_duplicates"] += 1
                    continue
            self._lsh_members.append(idx)  # an exact copy's signature is its group's: never indexed
        self._stats["docs"] += len(doc_ids)
        self._linked = False

    @property
    def stats(self) -> dict[str, int]:
        """docs, exact_duplicates, lsh_candidates (distinct pairs sharing a band), verified_pairs."""
        self._link()
        return self._stats

    def _link(self) -> None:
        """LSH over every indexed document at once, vectorised: per band, a 64-bit key per document (a random
        odd-multiplier combination of its rows), documents sorted by key, every pair in a run of equal keys a
        candidate; candidates with >= ``min_agree`` agreeing positions are unioned. The same pairs as querying
        a MinHashLSH document by document (a pair is a candidate iff it shares a band), so the same clusters,
        without a Python loop per document: the decision stays cheap next to the parallel passes."""
        if self._linked:
            return
        members = np.asarray(self._lsh_members, dtype=np.int64)
        sigs = self._sigs.data[members].astype(np.uint64, copy=False)
        pairs = []
        for b in range(self.bands):
            band = sigs[:, b * self.rows:(b + 1) * self.rows]
            keys = (band * self._band_combine).sum(axis=1, dtype=np.uint64)
            order = np.argsort(keys, kind="stable")
            sorted_keys = keys[order]
            starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
            lengths = np.diff(np.r_[starts, len(keys)])
            for start, length in zip(starts[lengths > 1], lengths[lengths > 1]):
                run = np.sort(members[order[start:start + length]])
                i, j = np.triu_indices(len(run), k=1)
                pairs.append(run[i] * len(self._ids) + run[j])
        candidates = np.unique(np.concatenate(pairs)) if pairs else np.empty(0, dtype=np.int64)
        first, second = np.divmod(candidates, len(self._ids)) if len(candidates) else (candidates, candidates)
        store = self._sigs.data
        verified = np.empty(len(candidates), dtype=bool)
        for lo in range(0, len(candidates), 65536):  # bounded memory: 64k pairs x num_perm comparisons a chunk
            hi = lo + 65536
            verified[lo:hi] = np.count_nonzero(store[first[lo:hi]] == store[second[lo:hi]], axis=1) >= self.min_agree
        for i, j in zip(first[verified].tolist(), second[verified].tolist()):
            self._union(i, j)
        self._stats["lsh_candidates"] = len(candidates)
        self._stats["verified_pairs"] = int(verified.sum())
        self._linked = True
        self._clusters = None

    def signatures_and_keys(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Signatures and exact keys with this deduplicator's parameters (tokenizer included), for :meth:`add`."""
        return signatures_and_keys(texts, self.num_perm, self.ngram, self.seed, self.scheme,
                                   tokenizer=self.tokenizer)

    def add_texts(self, doc_ids: Sequence[str], texts: Sequence[str]) -> None:
        """Compute signatures and exact keys for a batch of texts and :meth:`add` them (texts are not kept)."""
        sigs, keys = self.signatures_and_keys(texts)
        self.add(doc_ids, sigs, keys)

    def _find(self, i: int) -> int:
        parent = self._parent.data
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = int(parent[i])
        return i

    def _union(self, i: int, j: int) -> None:
        ri, rj = self._find(i), self._find(j)
        if ri != rj:
            self._parent.data[max(ri, rj)] = min(ri, rj)

    # -- results ----------------------------------------------------------------------------------------

    def _roots(self) -> np.ndarray:
        parent = self._parent.data.copy()
        while True:  # pointer jumping, vectorised: every entry ends at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                return parent
            parent = grand

    def clusters(self) -> dict[str, list[str]]:
        """Clusters of two or more documents: survivor (smallest doc id) -> sorted member ids."""
        self._link()
        if self._clusters is not None:
            return self._clusters
        roots = self._roots()
        _, inverse, sizes = np.unique(roots, return_inverse=True, return_counts=True)
        groups: dict[int, list[str]] = {}
        for idx in np.flatnonzero(sizes[inverse] > 1):
            groups.setdefault(int(roots[idx]), []).append(self._ids[idx])
        out: dict[str, list[str]] = {}
        for members in groups.values():
            members.sort()
            out[members[0]] = members
        self._clusters = out
        return out

    @property
    def cluster_of(self) -> dict[str, str]:
        """doc id -> cluster id (= the survivor's doc id), for every document in a cluster of two or more."""
        return {m: cid for cid, members in self.clusters().items() for m in members}

    def duplicates(self) -> dict[str, str]:
        """Non-survivor doc id -> reason: ``exact_duplicate`` if its normalised text equals the survivor's,
        else ``near_duplicate``."""
        reasons: dict[str, str] = {}
        for cid, members in self.clusters().items():
            survivor_key = self._exact_of.get(self._index[cid])
            for m in members[1:]:
                key = self._exact_of.get(self._index[m])
                reasons[m] = EXACT_DUPLICATE if key is not None and key == survivor_key else NEAR_DUPLICATE
        return reasons

    def survivors(self) -> list[str]:
        """Doc ids to keep, in insertion order: singletons and one (the smallest id) per cluster."""
        dropped = self.duplicates()
        return [d for d in self._ids if d not in dropped]

    def apply(self, docs: Iterable[Document]) -> StageOutput:
        """Split already-added documents by the global decision; writes ``metadata["dedup_cluster"]`` on every
        document (kept or dropped) that belongs to a cluster. Returns copies, the inputs are not mutated."""
        cluster_of = self.cluster_of
        dropped_reason = self.duplicates()
        kept: list[Document] = []
        dropped: list[tuple[Document, str]] = []
        for doc in docs:
            if doc.id not in self._index:
                raise KeyError(f"document {doc.id!r} was never added")
            cid = cluster_of.get(doc.id)
            if cid is not None:
                doc = dataclasses.replace(doc, metadata={**doc.metadata, CLUSTER_KEY: cid})
            reason = dropped_reason.get(doc.id)
            if reason is None:
                kept.append(doc)
            else:
                dropped.append((doc, reason))
        return StageOutput(kept, dropped)

    def deduplicate(self, docs: Sequence[Document]) -> StageOutput:
        """Add ``docs`` and split them. For a global run, ``add_texts`` every shard first, then ``apply``."""
        self.add_texts([d.id for d in docs], [d.text for d in docs])
        return self.apply(docs)


def deduplicate(docs: Sequence[Document], threshold: float = 0.8, num_perm: int = 112, ngram: int = 5,
                seed: int = 1, scheme: str = DEFAULT_SCHEME, **kwargs) -> StageOutput:
    """One in-memory batch through a fresh :class:`MinHashDeduplicator` (``kwargs``: its other keyword
    arguments): kept + dropped == docs."""
    return MinHashDeduplicator(threshold, num_perm, ngram, seed, scheme, **kwargs).deduplicate(docs)
