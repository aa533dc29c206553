"""MinHash signature throughput: our batched numpy path vs datasketch's per-document path, same run, same docs.

Peers (each includes turning text into shingles, as a pipeline must):

* ``datasketch bulk``     -- ``MinHash.bulk(shingles, num_perm, seed)``: the stock path (SHA1 hash, affine32).
* ``datasketch bulk/ours``-- ``MinHash.bulk`` with our shingle hash and scheme, whose output is bit-identical to
  ours (checked here), so this isolates the batching/vectorisation.
* ``datasketch update``   -- one ``MinHash.update`` call per shingle (on a subset, it is the slowest).

Everything runs in this one process on one core (numpy's elementwise kernels are single-threaded; BLAS/OpenMP
pools are pinned to 1 thread below), so docs/s per core = docs / wall time. Also times
``MinHashDeduplicator.add`` (exact pass + LSH query/insert + verification) on the same signatures.

    python benchmarks/minhash.py [--docs 20000] [--rounds 3] [--scheme affine64|affine32|legacy]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np
from datasketch import MinHash

from infir.data.curation.dedup import (
    DEFAULT_SCHEME,
    SCHEMES,
    MinHashDeduplicator,
    hashfunc_for,
    minhash_signatures,
    shingles,
    signatures_and_keys,
)

NUM_PERM, NGRAM, SEED = 112, 5, 1
ONSETS = ["", "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "w", "th", "st", "pr", "ch", "sh"]
VOWELS = ["a", "e", "i", "o", "u", "ea", "ou", "ai"]
CODAS = ["", "", "n", "r", "s", "t", "l", "nd", "ng", "st", "ck"]


def make_docs(n: int, size: int = 1024, seed: int = 0) -> list[str]:
    """~``size``-character English-like documents: Zipf-distributed syllable words (mean ~5 letters), sentence
    capitals and punctuation; 5% of documents are near copies of an earlier one, as in web crawls."""
    rng = random.Random(seed)
    vocab = sorted({"".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)
                            for _ in range(rng.choice([1, 1, 2, 2, 3]))) for _ in range(60000)})
    rng.shuffle(vocab)
    # Zipf's law of abbreviation, loosely: frequent words tend to be short (~180 words per KB, like English).
    vocab.sort(key=lambda w: len(w) + rng.gauss(0, 1.5))
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    docs: list[str] = []
    while len(docs) < n:
        if docs and rng.random() < 0.05:
            words = rng.choice(docs).split()
            for _ in range(3):
                words[rng.randrange(len(words))] = rng.choice(vocab)
            docs.append(" ".join(words))
            continue
        parts: list[str] = []
        length = 0
        for w in rng.choices(vocab, weights, k=400):
            if not parts or parts[-1].endswith("."):
                w = w.capitalize()
            if rng.random() < 0.07:
                w += rng.choice([".", ".", ",", ";", "?"])
            parts.append(w)
            length += len(w) + 1
            if length >= size:
                break
        docs.append(" ".join(parts))
    return docs


def timed(fn, rounds: int) -> tuple[float, object]:
    """Median wall time over ``rounds`` runs (and the last result)."""
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--update-docs", type=int, default=2000, help="subset for the per-shingle update() peer")
    ap.add_argument("--scheme", default=DEFAULT_SCHEME, choices=SCHEMES, help="datasketch permutation scheme")
    args = ap.parse_args()
    scheme = args.scheme

    docs = make_docs(args.docs)
    mean_len = sum(map(len, docs)) / len(docs)
    mean_sh = sum(len(shingles(d)) for d in docs[:2000]) / min(len(docs), 2000)
    minhash_signatures(docs[:200], scheme=scheme)  # warm-up: normalisation table, permutation cache
    print(f"os.cpu_count()={os.cpu_count()} (single process, single thread: docs/s below is per core); "
          f"{len(docs)} docs, mean {mean_len:.0f} chars, ~{mean_sh:.0f} shingles/doc, num_perm={NUM_PERM}, "
          f"ngram={NGRAM}, scheme={scheme}")

    results: dict[str, float] = {}
    t_ours, ours = timed(lambda: minhash_signatures(docs, NUM_PERM, NGRAM, SEED, scheme), args.rounds)
    results["ours minhash_signatures"] = len(docs) / t_ours

    def ds_bulk(**kw):
        return MinHash.bulk(([s.encode() for s in shingles(d, NGRAM)] for d in docs), num_perm=NUM_PERM,
                            seed=SEED, **kw)

    rounds_ds = max(1, args.rounds - 1)
    t_bulk, _ = timed(ds_bulk, rounds_ds)
    results["datasketch bulk (stock)"] = len(docs) / t_bulk
    t_same, same = timed(lambda: ds_bulk(hashfunc=hashfunc_for(scheme), scheme=scheme), rounds_ds)
    results["datasketch bulk (our hash)"] = len(docs) / t_same
    identical = all(np.array_equal(m.hashvalues, row) for m, row in zip(same, ours))

    subset = docs[:args.update_docs]

    def ds_update():
        out = []
        for d in subset:
            m = MinHash(num_perm=NUM_PERM, seed=SEED)
            for s in shingles(d, NGRAM):
                m.update(s.encode())
            out.append(m)
        return out

    t_upd, _ = timed(ds_update, 1)
    results["datasketch update (stock)"] = len(subset) / t_upd

    sigs, keys = signatures_and_keys(docs, NUM_PERM, NGRAM, SEED, scheme)
    ids = [f"doc{i:07d}" for i in range(len(docs))]

    def index():
        dd = MinHashDeduplicator(num_perm=NUM_PERM, ngram=NGRAM, seed=SEED, scheme=scheme)
        dd.add(ids, sigs, keys)
        return dd

    t_add, dd = timed(index, 1)
    results["MinHashDeduplicator.add (LSH)"] = len(docs) / t_add

    base = results["datasketch bulk (stock)"]
    print(f"{'path':34s} {'docs/s/core':>12s} {'vs datasketch bulk':>19s}")
    for name, rate in results.items():
        print(f"{name:34s} {rate:12,.0f} {rate / base:18.1f}x")
    print(f"ours == datasketch bulk with our hash, bit for bit: {identical}")
    print(f"ratio ours / datasketch bulk (stock) = {results['ours minhash_signatures'] / base:.1f}x; "
          f"ours / datasketch bulk (our hash) = {results['ours minhash_signatures'] / results['datasketch bulk (our hash)']:.1f}x; "
          f"target >= 10,000 docs/s/core: {'met' if results['ours minhash_signatures'] >= 10000 else 'NOT met'}")
    print(f"LSH: b={dd.bands} r={dd.rows}; {len(dd.clusters())} clusters, {len(dd.duplicates())} duplicates; {dd.stats}")


if __name__ == "__main__":
    main()
