"""MinHash signatures: ours (batched numpy) vs datatrove and datasketch, interleaved, in CPU-seconds per document.

    python benchmarks/minhash.py [--docs 20000] [--rounds 8] [--scheme affine64|affine32|legacy]
    pip install -r requirements-bench.txt   # the datatrove peer (optional: without it the row is skipped)

Peers (each includes turning text into shingles, as a pipeline must):

* ``datatrove signature`` -- datatrove 0.10.1's ``MinhashDedupSignature`` per document, in this process:
  ``get_shingles(text)`` (simplify_text, spaCy word tokens, xxh64 of each space-joined 5-gram) then
  ``get_signature`` (14 buckets x 8 hashes = 112, seed 1). Its ``run()`` would also ``struct.pack`` every bucket
  row into 14 files and sort them; that I/O is not timed (ours returns an array too).
* ``datasketch bulk``     -- ``MinHash.bulk(shingles, num_perm, seed)``: the stock path (SHA1 hash, affine32).
* ``datasketch bulk/ours``-- ``MinHash.bulk`` with our shingle hash and scheme, whose output is bit-identical to
  ours (checked here), so this isolates the batching/vectorisation.
* ``datasketch update``   -- one ``MinHash.update`` call per shingle (on a subset, it is the slowest).

Timing: the documents are cut into ``--rounds`` batches and every path runs on every batch, the order rotating
from batch to batch (AB, BA, ...), so machine drift and cache warmth fall on all alike. CPU time is
``time.process_time()`` (this process's own CPU-seconds: fair on a shared machine, where wall time also counts
the other tenants); wall time is reported next to it. One process, one thread (numpy's elementwise kernels are
single-threaded; BLAS/OpenMP pools are pinned to 1 thread below), so docs per CPU-second is the per-core rate.
Also times ``MinHashDeduplicator`` ``add`` + ``clusters`` (exact pass, LSH, verification) on the same signatures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from datasketch import MinHash  # noqa: E402

from infir.data.curation import dedup as dedup_module  # noqa: E402
from infir.data.curation.dedup import (  # noqa: E402
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



def signature_differences(tokenizer: str = "words") -> str:
    """What differs between our signatures (with ``tokenizer``) and datatrove's (benchmarks/curation.py prints it)."""
    if tokenizer == "words":
        ours = ("ours: NFKC + lowercase, punctuation deleted (\"don't\" -> \"dont\"), digits and diacritics kept,\n"
                "    whitespace split")
    else:  # code_aware (infir.data.curation.dedup.tokens)
        ours = (f"ours ({tokenizer!r}): NFKC + lowercase; identifiers/words, and each operator and bracket as its own\n"
                "    token (\"x=f(a)\" -> x = f ( a )); , ; : ! ? and sentence-end dots separate like whitespace,\n"
                "    quotes fold to one, dash runs to one; digits and diacritics kept")
    return f"""\
MinHash signatures, ours vs datatrove 0.10.1 MinhashDedupSignature (same 112 hashes, 5-grams, seed 1):
  - tokens: datatrove's simplify_text lowercases, turns every number into "0", punctuation into a space
    ("don't" -> "don t"), strips diacritics (NFD, combining marks dropped), then spaCy's English tokenizer
    splits it; {ours}.
  - hash: datatrove xxh64 of each space-joined 5-gram, permuted by (a*h+b) mod 2^61-1 (after numpy's uint64
    wrap), cut into 14 buckets x 8; ours combines per-token xxh3_64 hashes linearly per 5-gram, MurmurHash3
    fmix64, then a*h+b mod 2^64 (datasketch's affine64 permutations).
  - short documents: under 5 tokens datatrove makes no shingle, so no signature (never deduplicated); ours
    takes the whole normalised text as its one shingle."""


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


# ------------------------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """CPU-seconds (``time.process_time``) and wall seconds one path spent on ``docs`` documents."""

    docs: int = 0
    cpu: float = 0.0
    wall: float = 0.0

    @property
    def cpu_per_doc(self) -> float:
        return self.cpu / self.docs if self.docs else float("nan")

    @property
    def wall_per_doc(self) -> float:
        return self.wall / self.docs if self.docs else float("nan")


def interleave(runners: Mapping[str, Callable[[Any], Any]], batches: Sequence[Sequence],
               prepare: Mapping[str, Callable[[Sequence], Any]] | None = None,
               ) -> tuple[dict[str, Timing], dict[str, list]]:
    """Run every runner on every batch, rotating the order per batch (AB, BA, AB, ...): drift, cache warmth and
    the other tenants of a shared machine fall on all paths alike. ``prepare[name](batch)`` builds a runner's
    input (fresh document copies, say) outside the timing. Returns timings and each runner's outputs per batch."""
    names = list(runners)
    timings = {name: Timing() for name in names}
    outputs: dict[str, list] = {name: [] for name in names}
    for i, batch in enumerate(batches):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            data = prepare[name](batch) if prepare and name in prepare else batch
            gc.collect()  # a collection triggered by the previous path's garbage is not this path's cost
            cpu0, wall0 = time.process_time(), time.perf_counter()
            out = runners[name](data)
            timings[name].cpu += time.process_time() - cpu0
            timings[name].wall += time.perf_counter() - wall0
            timings[name].docs += len(batch)
            outputs[name].append(out)
    return timings, outputs


def batches_of(items: Sequence, rounds: int) -> list[Sequence]:
    """``items`` cut into ``rounds`` near-equal consecutive batches (fewer if there are fewer items)."""
    rounds = max(1, min(rounds, len(items)))
    bounds = np.linspace(0, len(items), rounds + 1).astype(int)
    return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def format_timings(timings: Mapping[str, Timing], ours: str, label: str = "path",
                   peers: Sequence[str] | None = None) -> str:
    """Rows of CPU-s/doc, wall-s/doc, docs per CPU-second and how many times faster ``ours`` is (CPU) than each
    of ``peers`` (default: every other row)."""
    width = max(len(label), *map(len, timings)) + 2
    lines = [f"{label:<{width}}{'CPU-s/doc':>11}{'wall-s/doc':>12}{'docs/CPU-s':>12}  ours vs this (CPU)"]
    base = timings[ours].cpu_per_doc
    for name, t in timings.items():
        is_peer = name != ours if peers is None else name in peers
        ratio = f"{t.cpu_per_doc / base:.1f}x faster" if is_peer else "-"
        lines.append(f"{name:<{width}}{t.cpu_per_doc:>11.2e}{t.wall_per_doc:>12.2e}{1 / t.cpu_per_doc:>12,.0f}"
                     f"  {ratio}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- peers


def patch_datatrove_xxhash(step: Any) -> None:
    """datatrove 0.10.1 hashes ``str`` shingles with ``xxhash.xxh64_intdigest``, which xxhash >= 4 refuses
    ("Strings must be encoded"); its extra pins xxhash<4, which hashed ``str`` as UTF-8. We run xxhash 4, so
    the step gets the same function over UTF-8 bytes: identical values, one ``encode`` per shingle."""
    import xxhash

    if getattr(step, "_hash_func", None) is not None and step._hash_func.__module__.startswith("datatrove"):
        try:
            step._hash_func("probe")
        except TypeError:
            digest = xxhash.xxh32_intdigest if step.config.hash_config.precision == 32 else xxhash.xxh64_intdigest
            step._hash_func = lambda text: digest(text.encode())


def datatrove_signer(num_perm: int = NUM_PERM, ngram: int = NGRAM, seed: int = SEED,
                     hashes_per_bucket: int = 8) -> Callable[[Sequence[str]], list] | None:
    """datatrove's per-document signature (``MinhashDedupSignature.get_shingles`` + ``get_signature``), or
    ``None`` when datatrove is not installed. A document without shingles gets ``None``, as ``run()`` skips it."""
    try:
        from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    except ImportError:
        return None
    if num_perm % hashes_per_bucket:
        raise ValueError(f"num_perm={num_perm} must be a multiple of datatrove's hashes_per_bucket={hashes_per_bucket}")
    folder = tempfile.TemporaryDirectory(prefix="datatrove_sig_")  # never written: only run() writes
    step = MinhashDedupSignature(folder.name, MinhashConfig(n_grams=ngram, num_buckets=num_perm // hashes_per_bucket,
                                                            hashes_per_bucket=hashes_per_bucket, seed=seed))
    patch_datatrove_xxhash(step)

    def sign(texts: Sequence[str], _keep=folder) -> list:
        out = []
        for text in texts:
            sh = step.get_shingles(text)
            out.append(step.get_signature(sh) if sh.size else None)
        return out

    sign(["warm up the spaCy tokenizer and the permutation parameters, five words or more"])
    return sign


def datasketch_bulk(texts: Sequence[str], num_perm: int = NUM_PERM, ngram: int = NGRAM, seed: int = SEED,
                    tokenizer: str | None = None, **kw):
    """datasketch's ``MinHash.bulk`` over our shingles (``tokenizer``: ours' default when None)."""
    tok = {} if tokenizer is None else {"tokenizer": tokenizer}
    return MinHash.bulk(([s.encode() for s in shingles(t, ngram, **tok)] for t in texts), num_perm=num_perm,
                        seed=seed, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=8, help="batches the paths alternate over")
    ap.add_argument("--update-docs", type=int, default=2000, help="subset for the per-shingle update() peer")
    ap.add_argument("--scheme", default=DEFAULT_SCHEME, choices=SCHEMES, help="datasketch permutation scheme")
    args = ap.parse_args()
    scheme = args.scheme

    docs = make_docs(args.docs)
    mean_len = sum(map(len, docs)) / len(docs)
    mean_sh = sum(len(shingles(d)) for d in docs[:2000]) / min(len(docs), 2000)
    minhash_signatures(docs[:200], scheme=scheme)  # warm-up: normalisation table, permutation cache
    print(f"os.cpu_count()={os.cpu_count()} (one process, one thread: docs per CPU-second is per core); "
          f"{len(docs)} docs, mean {mean_len:.0f} chars, ~{mean_sh:.0f} shingles/doc, num_perm={NUM_PERM}, "
          f"ngram={NGRAM}, scheme={scheme}; {args.rounds} interleaved rounds\n")

    runners: dict[str, Callable] = {
        "ours minhash_signatures": lambda b: minhash_signatures(b, NUM_PERM, NGRAM, SEED, scheme),
        "datasketch bulk (stock)": datasketch_bulk,
        "datasketch bulk (our hash)": lambda b: datasketch_bulk(b, hashfunc=hashfunc_for(scheme), scheme=scheme),
    }
    signer = datatrove_signer()
    if signer is None:
        print("datatrove not installed (pip install -r requirements-bench.txt): its row is skipped\n")
    else:
        runners["datatrove signature"] = signer
    timings, outputs = interleave(runners, batches_of(docs, args.rounds))
    ours = np.concatenate(outputs["ours minhash_signatures"])
    same = [m for batch in outputs["datasketch bulk (our hash)"] for m in batch]
    identical = all(np.array_equal(m.hashvalues, row) for m, row in zip(same, ours))

    subset = docs[:args.update_docs]

    def ds_update(texts):
        out = []
        for d in texts:
            m = MinHash(num_perm=NUM_PERM, seed=SEED)
            for s in shingles(d, NGRAM):
                m.update(s.encode())
            out.append(m)
        return out

    upd, _ = interleave({"ours minhash_signatures": runners["ours minhash_signatures"],
                         "datasketch update (stock)": ds_update}, batches_of(subset, 2))
    timings["datasketch update (stock)"] = upd["datasketch update (stock)"]

    sigs, keys = signatures_and_keys(docs, NUM_PERM, NGRAM, SEED, scheme)
    ids = [f"doc{i:07d}" for i in range(len(docs))]

    def decide(_):
        dd = MinHashDeduplicator(num_perm=NUM_PERM, ngram=NGRAM, seed=SEED, scheme=scheme)
        dd.add(ids, sigs, keys)
        dd.clusters()  # the LSH and verification may run here rather than in add()
        return dd

    add, built = interleave({"dedup": decide}, [ids])
    dd = built["dedup"][0]

    print(format_timings(timings, "ours minhash_signatures"))
    print(f"(datasketch update on the first {len(subset)} docs, interleaved with ours on the same docs)")
    t = add["dedup"]
    print(f"MinHashDeduplicator add + clusters (exact pass, LSH, verification): {t.cpu_per_doc:.2e} CPU-s/doc, "
          f"{1 / t.cpu_per_doc:,.0f} docs/CPU-s")
    rate = 1 / timings["ours minhash_signatures"].cpu_per_doc
    print(f"ours == datasketch bulk with our hash, bit for bit: {identical}; "
          f"target >= 10,000 docs/CPU-s: {'met' if rate >= 10000 else 'NOT met'} ({rate:,.0f})")
    print(f"LSH: b={dd.bands} r={dd.rows}; {len(dd.clusters())} clusters, {len(dd.duplicates())} duplicates; "
          f"{dd.stats}")
    if signer is not None:
        print("\n" + signature_differences(getattr(dedup_module, "DEFAULT_TOKENIZER", "words")))


if __name__ == "__main__":
    main()
