"""Global MinHash deduplication (curation stage 3): exact pass, then MinHash-LSH near-duplicate clustering.

Pipeline, following FineWeb/datatrove conventions:

1. Normalise text (NFKC, lowercase, drop punctuation, collapse whitespace) so trivial formatting changes do
   not hide a duplicate, then take word 5-gram shingles.
2. MinHash signatures, computed in batches with numpy: every word is hashed once with xxh3, a 5-gram's hash
   is an odd-multiplier linear combination of its words' hashes (vectorised over the whole batch), and the
   permutations are datasketch's own (same ``seed``/``num_perm``/``scheme`` parameters), so each row equals
   what ``datasketch.MinHash(..., hashfunc=shingle_hash)`` builds over the same shingles, bit for bit.
3. :class:`MinHashDeduplicator`: exact duplicates (hash of the normalised text) first, then
   ``datasketch.MinHashLSH`` with bands/rows from datasketch's FP/FN optimisation; LSH candidates are kept
   only if their estimated Jaccard (signature agreement) reaches the threshold; union-find turns verified
   pairs into clusters. ``add`` may be called once per shard, so the clusters are global; the survivor of a
   cluster is its smallest doc id, which does not depend on the order shards arrive in.

Only signatures (numpy), 128-bit exact keys and LSH band keys are held, never document text.

Permutation scheme (datasketch >= 2.0 has three): the default ``affine64`` (a*h+b mod 2^64 after a
MurmurHash3 pre-mix) gives uint64 signatures and avoids the bias of ``legacy`` ((a*h+b) mod (2^61-1),
truncated to 32 bits, the only scheme before datasketch 2.0), which we still reproduce bit for bit for old
indexes; ``affine32`` halves signature memory and is ~25% faster. Documents that normalise to nothing all
share one exact key (and the empty sketch), so they form one exact-duplicate cluster.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import string
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np
import xxhash
from datasketch import LeanMinHash, MinHash, MinHashLSH
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


def normalize_text(text: str) -> str:
    """NFKC, lowercase, delete punctuation, collapse whitespace: formatting noise must not hide duplicates.

    Punctuation is deleted (not replaced by a space), as in datatrove's ``simplify_text``: "don't" -> "dont".
    """
    return " ".join(_clean(text).split())


_ASCII_PUNCTUATION = string.punctuation.encode()
_ASCII_CHARS = frozenset(map(chr, range(128)))


def _normalized_words(text: str) -> list[bytes]:
    """UTF-8 words of :func:`normalize_text` (same result: the table leaves only ASCII whitespace).

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


def shingles(text: str, ngram: int = 5) -> list[str]:
    """Word n-grams of the normalised text; a text shorter than ``ngram`` words is one shingle, empty has none."""
    norm = normalize_text(text)
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


def exact_key(text: str) -> int:
    """128-bit hash of the normalised text: equal keys mean exact duplicates after normalisation."""
    return xxhash.xxh3_128_intdigest(normalize_text(text).encode())


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


def _shingle_hashes(texts: Sequence[str], ngram: int,
                    with_keys: bool = True) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(64-bit hash of every shingle, shingles per document, exact keys if ``with_keys``) for a batch.

    The only per-document Python work is normalise/encode/split; words are hashed by ``map`` over xxh3
    (no Python frame per word) and the n-gram combination runs in numpy over the whole batch.
    """
    if not 1 <= ngram <= MAX_NGRAM:
        raise ValueError(f"ngram must be in [1, {MAX_NGRAM}], got {ngram}")
    word_lists: list[list[bytes]] = []
    keys: list[int] = []
    key_fn = xxhash.xxh3_128_intdigest
    for text in texts:
        words = _normalized_words(text)
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
                        scheme: str = DEFAULT_SCHEME, with_keys: bool = True) -> tuple[np.ndarray, list[int]]:
    """Signatures plus :func:`exact_key` of every text (if ``with_keys``), from one normalisation pass.

    Works through ``_DOC_BATCH`` documents at a time, which bounds the per-word temporaries and keeps them
    cache-sized whatever the input length.
    """
    _check_scheme(scheme)
    if not isinstance(texts, (list, tuple)):
        texts = list(texts)
    sigs = np.empty((len(texts), num_perm), dtype=signature_dtype(scheme))
    keys: list[int] = []
    for i in range(0, len(texts), _DOC_BATCH):
        hashes, counts, batch_keys = _shingle_hashes(texts[i:i + _DOC_BATCH], ngram, with_keys)
        sigs[i:i + len(counts)] = _signatures_from_hashes(hashes, counts, num_perm, seed, scheme)
        keys.extend(batch_keys)
    return sigs, keys


def minhash_signatures(texts: Sequence[str], num_perm: int = 112, ngram: int = 5, seed: int = 1,
                       scheme: str = DEFAULT_SCHEME) -> np.ndarray:
    """MinHash signatures, shape ``(len(texts), num_perm)``, uint64 (uint32 for ``scheme="affine32"``).

    Row i equals ``MinHash(num_perm, seed, scheme=scheme, hashfunc=hashfunc_for(scheme))`` updated with
    ``shingles(texts[i], ngram)`` (encoded), so ``to_minhash`` objects can be compared with, and indexed next to,
    sketches datasketch builds itself. A text with no shingles gets the empty sketch (all max values).
    """
    return signatures_and_keys(texts, num_perm, ngram, seed, scheme, with_keys=False)[0]


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


@functools.cache
def choose_bands_rows(threshold: float, num_perm: int, fp_weight: float = 0.5,
                      fn_weight: float = 0.5) -> tuple[int, int]:
    """Bands and rows minimising the weighted FP/FN areas under the S-curve (datasketch's optimisation)."""
    b, r = _optimal_param(threshold, num_perm, fp_weight, fn_weight)
    log.info("MinHash LSH: threshold %.3f, num_perm %d -> b=%d bands x r=%d rows (P(candidate | s=t) = %.3f)",
             threshold, num_perm, b, r, float(candidate_probability(threshold, b, r)))
    return b, r


def _band_key(band: bytes) -> int:
    """64-bit key per band instead of r*8 raw bytes: smaller LSH tables; a rare collision only adds a
    candidate, which verification then rejects."""
    return xxhash.xxh3_64_intdigest(band)


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
    LSH index, its signature being identical); otherwise the LSH index is queried, candidates whose estimated
    Jaccard is >= ``threshold`` are unioned with it, and it is inserted. Clusters are the connected components
    of these pairs, which do not depend on insertion order; the survivor is the smallest doc id.
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 112, ngram: int = 5, seed: int = 1,
                 scheme: str = DEFAULT_SCHEME, fp_weight: float = 0.5, fn_weight: float = 0.5) -> None:
        _check_scheme(scheme)
        self.threshold, self.num_perm, self.ngram, self.seed, self.scheme = threshold, num_perm, ngram, seed, scheme
        self.bands, self.rows = choose_bands_rows(threshold, num_perm, fp_weight, fn_weight)
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, params=(self.bands, self.rows),
                               hashfunc=_band_key)
        self._min_agree = int(np.ceil(threshold * num_perm - 1e-9))  # agreements needed for est. J >= t
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._sigs = _Rows(num_perm, signature_dtype(scheme))
        self._parent = _Rows(None, np.int64)
        self._exact_first: dict[int, int] = {}  # exact key -> first index with it
        self._exact_of: dict[int, int] = {}  # index -> exact key, only for documents in an exact group
        self._clusters: dict[str, list[str]] | None = None  # cache, reset by add()
        self.stats = {"docs": 0, "exact_duplicates": 0, "lsh_candidates": 0, "verified_pairs": 0}

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
        store = self._sigs.data
        for i in range(len(doc_ids)):
            idx = base + i
            if exact_keys is not None:
                key = exact_keys[i]
                first = self._exact_first.setdefault(key, idx)
                if first != idx:
                    self._exact_of[idx] = self._exact_of[first] = key
                    self._union(first, idx)
                    self.stats["exact_duplicates"] += 1
                    continue
            sig = store[idx]
            mh = LeanMinHash(seed=self.seed, hashvalues=sig, scheme=self.scheme)
            cands = self._lsh.query(mh)
            if cands:
                self.stats["lsh_candidates"] += len(cands)
                cands_arr = np.fromiter(cands, dtype=np.int64, count=len(cands))
                agree = np.count_nonzero(store[cands_arr] == sig, axis=1)
                for j in cands_arr[agree >= self._min_agree]:
                    self._union(int(j), idx)
                    self.stats["verified_pairs"] += 1
            self._lsh.insert(idx, mh, check_duplication=False)
        self.stats["docs"] += len(doc_ids)

    def add_texts(self, doc_ids: Sequence[str], texts: Sequence[str]) -> None:
        """Compute signatures and exact keys for a batch of texts and :meth:`add` them (texts are not kept)."""
        sigs, keys = signatures_and_keys(texts, self.num_perm, self.ngram, self.seed, self.scheme)
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
                seed: int = 1, scheme: str = DEFAULT_SCHEME) -> StageOutput:
    """One in-memory batch through a fresh :class:`MinHashDeduplicator`: kept + dropped == docs."""
    return MinHashDeduplicator(threshold, num_perm, ngram, seed, scheme).deduplicate(docs)
