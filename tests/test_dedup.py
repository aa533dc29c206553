"""MinHash dedup: accuracy against exact Jaccard, exact pass, global/deterministic clustering, datasketch parity."""

from __future__ import annotations

import random
from collections import defaultdict
from itertools import combinations

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from infir.data.curation import dedup as dedup_module
from infir.data.curation.base import StageStats
from infir.data.curation.dedup import (
    CLUSTER_KEY,
    DEFAULT_FN_WEIGHT,
    DEFAULT_FP_WEIGHT,
    EXACT_DUPLICATE,
    NEAR_DUPLICATE,
    SCHEMES,
    TOKENIZERS,
    MinHashDeduplicator,
    candidate_probability,
    choose_bands_rows,
    deduplicate,
    estimated_jaccard,
    exact_key,
    hashfunc_for,
    minhash_signatures,
    normalize_text,
    shingles,
    to_minhash,
    tokens,
)
from infir.data.documents import Document

THRESHOLD = 0.8
# Generated pairs are either >= HIGH or <= LOW in exact Jaccard, so nothing sits in the band where the
# verification is a coin flip by design (82 of 112 agreements: P(accept) = 0.5 near J = 0.73, 0.04 at 0.65,
# >= 0.97 from J = 0.8) and the test is strict.
HIGH, LOW = 0.89, 0.65
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "so", "vi", "de", "pa", "en", "or", "th", "st", "an", "qu", "el",
             "ba", "go", "it", "us", "we", "yo", "ze", "ch", "ph"]


def _vocab(rng: random.Random, size: int = 4000) -> list[str]:
    words = {"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(size * 2)}
    return sorted(words)[:size]


def _noisy(rng: random.Random, words: list[str]) -> str:
    """Render words with capitals and punctuation that normalisation removes (so copies differ in raw text)."""
    out = []
    for w in words:
        if rng.random() < 0.05:
            w = w.capitalize()
        if rng.random() < 0.08:
            w += rng.choice([",", ".", ";", "!", "?"])
        out.append(w)
    return rng.choice(["", "  ", "\n"]) + rng.choice([" ", "  ", "\n"]).join(out)


def _edit(rng: random.Random, words: list[str], n_edits: int, vocab: list[str]) -> list[str]:
    """Scattered word substitutions, insertions and deletions."""
    words = list(words)
    for _ in range(n_edits):
        op, i = rng.random(), rng.randrange(len(words))
        if op < 0.6:
            words[i] = rng.choice(vocab)
        elif op < 0.8:
            words.insert(i, rng.choice(vocab))
        else:
            del words[i]
    return words


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _make_corpus(seed: int = 7, n_base: int = 300, n_words: int = 200) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Base documents plus edited copies: per base, one of several copy patterns (high/low similarity, two
    near copies, formatting-only copy). Edits are redrawn until every within-group pair is outside (LOW, HIGH)."""
    rng = random.Random(seed)
    vocab = _vocab(rng)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(vocab))]  # Zipf-ish, like English
    texts: dict[str, str] = {}
    for b in range(n_base):
        base = rng.choices(vocab, weights, k=n_words)
        pattern = b % 5
        edits = {0: [rng.choice([1, 2])], 1: [rng.randint(9, 16)], 2: [1, rng.randint(9, 16)], 3: [0],
                 4: [1, 1]}[pattern]
        while True:
            group = [base] + [_edit(rng, base, k, vocab) for k in edits]
            sets = [set(shingles(" ".join(g))) for g in group]
            if all(not LOW < _jaccard(x, y) < HIGH for x, y in combinations(sets, 2)):
                break
        for c, words in enumerate(group):
            texts[f"doc{b:04d}-{c}"] = _noisy(rng, words)
    sets = {d: set(shingles(t)) for d, t in texts.items()}
    return texts, sets


def _true_pairs(sets: dict[str, set[str]], threshold: float) -> tuple[set[tuple[str, str]], list[float]]:
    """Exact Jaccard of every pair sharing a shingle (the others are 0), via an inverted index."""
    by_shingle: dict[str, list[str]] = defaultdict(list)
    for d, s in sets.items():
        for sh in s:
            by_shingle[sh].append(d)
    candidates = {tuple(sorted(p)) for docs in by_shingle.values() for p in combinations(docs, 2)}
    sims = {p: _jaccard(sets[p[0]], sets[p[1]]) for p in candidates}
    return {p for p, j in sims.items() if j >= threshold}, list(sims.values())


def _cluster_pairs(clusters: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for members in clusters.values() for p in combinations(members, 2)}


def test_precision_recall_against_exact_jaccard() -> None:
    texts, sets = _make_corpus()
    truth, sims = _true_pairs(sets, THRESHOLD)
    in_gap = [j for j in sims if LOW < j < HIGH]
    assert not in_gap, f"generated data must leave a gap around the threshold, found {in_gap[:5]}"
    assert 150 < len(truth) < 600 and sum(j < THRESHOLD for j in sims) > 100  # both sides well represented

    dedup = MinHashDeduplicator(threshold=THRESHOLD)
    dedup.add_texts(list(texts), list(texts.values()))
    predicted = _cluster_pairs(dedup.clusters())
    hits = len(predicted & truth)
    precision, recall = hits / max(len(predicted), 1), hits / len(truth)
    print(f"\n{len(texts)} docs, {len(truth)} true pairs at J>={THRESHOLD}, {len(predicted)} predicted; "
          f"precision {precision:.4f} recall {recall:.4f}; b={dedup.bands} r={dedup.rows}; {dedup.stats}")
    assert precision >= 0.95 and recall >= 0.95
    assert dedup.stats["verified_pairs"] < dedup.stats["lsh_candidates"]  # verification rejected LSH false positives
    assert dedup.stats["exact_duplicates"] >= 50  # the formatting-only copies (pattern 3)


def test_exact_duplicates_found_by_exact_pass() -> None:
    base = "The quick brown fox jumps over the lazy dog near the quiet river bank today"
    docs = [Document("b", base, "t", "web"), Document("a", base.upper() + "!!", "t", "web"),
            Document("c", "  " + base.replace(" ", "\n"), "t", "web"), Document("z", "something else entirely", "t", "web")]
    assert len({exact_key(d.text) for d in docs[:3]}) == 1
    dedup = MinHashDeduplicator()
    out = dedup.deduplicate(docs)
    assert dedup.stats["exact_duplicates"] == 2 and dedup.stats["lsh_candidates"] == 0  # never reached LSH
    assert [d.id for d in out.kept] == ["a", "z"]
    assert sorted((d.id, r) for d, r in out.dropped) == [("b", EXACT_DUPLICATE), ("c", EXACT_DUPLICATE)]
    assert dedup.clusters() == {"a": ["a", "b", "c"]}


def test_survivor_deterministic_across_order_and_shards() -> None:
    texts, _ = _make_corpus(seed=11, n_base=60)
    ids = list(texts)
    one = MinHashDeduplicator()
    one.add_texts(ids, [texts[i] for i in ids])
    reference = one.clusters()
    assert len(reference) > 20
    assert all(cid == min(members) for cid, members in reference.items())

    rng = random.Random(3)
    for trial in range(3):
        order = ids[:]
        rng.shuffle(order)
        cut = len(order) // 2 if trial else len(order) // 3
        sharded = MinHashDeduplicator()  # two shards, each with its own add call, arriving in shuffled order
        for shard in (order[cut:], order[:cut]):
            sharded.add_texts(shard, [texts[i] for i in shard])
        assert sharded.clusters() == reference
        assert sorted(sharded.survivors()) == sorted(one.survivors())
        assert sharded.duplicates() == one.duplicates()
        assert sharded.cluster_of == one.cluster_of

    # A pair split across shards is still found: clustering is global, not per add() call.
    a, b = "doc0000-0", "doc0000-1"
    assert one.cluster_of[a] == one.cluster_of[b] == a
    split = MinHashDeduplicator()
    split.add_texts([b], [texts[b]])
    split.add_texts([a], [texts[a]])
    assert split.clusters() == {a: [a, b]} and split.survivors() == [a]
    with pytest.raises(ValueError, match="duplicate doc id"):
        split.add_texts([a], [texts[a]])


def test_choose_bands_rows() -> None:
    b, r = choose_bands_rows(THRESHOLD, 112)
    print(f"\nthreshold {THRESHOLD}, num_perm 112 -> b={b} r={r}, P(candidate | s) at s=0.5/0.7/0.8/0.9/0.95: "
          + " / ".join(f"{candidate_probability(s, b, r):.3f}" for s in (0.5, 0.7, 0.8, 0.9, 0.95)))
    assert b >= 2 and b * r <= 112
    ds = MinHashLSH(threshold=THRESHOLD, num_perm=112)
    assert (b, r) == (ds.b, ds.r)
    assert 0.3 < candidate_probability(THRESHOLD, b, r) < 0.7  # the S-curve's steep part sits on the threshold
    assert candidate_probability(0.95, b, r) > 0.99 and candidate_probability(0.5, b, r) < 0.01
    # Weighting false negatives more moves the curve left (more candidates) — the weights reach datasketch.
    b2, r2 = choose_bands_rows(THRESHOLD, 112, fp_weight=0.1, fn_weight=0.9)
    assert candidate_probability(THRESHOLD, b2, r2) > candidate_probability(THRESHOLD, b, r)
    # The deduplicator's default weighs misses 199x: candidates are verified, so LSH only has to miss few pairs.
    default = MinHashDeduplicator()
    assert (default.bands, default.rows) == choose_bands_rows(THRESHOLD, 112, DEFAULT_FP_WEIGHT, DEFAULT_FN_WEIGHT)
    assert (default.bands, default.rows) == (18, 6)
    assert candidate_probability(THRESHOLD, default.bands, default.rows) > 0.99


def test_signatures_are_datasketch_minhash(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    vocab = _vocab(rng, 500)
    base = [rng.choice(vocab) for _ in range(150)]
    variants = [base, _edit(rng, base, 3, vocab), _edit(rng, base, 12, vocab), _edit(rng, base, 40, vocab)]
    code = 'def f(self, x=1):\n    return self.x(a)["k"] + 3.14 -- 2  # don\u2019t'
    unicode = "Ｆｕｌｌ «quotes», caf\u00e9 \u2014 na\u00efve \u03a3\u039f\u03a3\u00a0x\u2028y \u20ac5 \u3001ok"
    texts = [" ".join(v) for v in variants] + ["Only three words", "", "!!! ...", code, unicode]
    sh = [shingles(t) for t in texts]
    assert sh[4] == ["only three words"] and sh[5] == [] == sh[6]

    # Bit-exact: our batched rows equal datasketch's own update path with the same hash, for every scheme and
    # tokenizer (the vectorised path tokenises on its own; the shingle strings here come from shingles()).
    for tokenizer in TOKENIZERS:
        sh_tok = [shingles(t, 5, tokenizer) for t in texts]
        for scheme in SCHEMES:
            sigs = minhash_signatures(texts, num_perm=112, seed=1, scheme=scheme, tokenizer=tokenizer)
            assert sigs.shape == (len(texts), 112)
            for row, shingle_list in zip(sigs, sh_tok):
                m = MinHash(num_perm=112, seed=1, scheme=scheme, hashfunc=hashfunc_for(scheme))
                m.update_batch([s.encode() for s in shingle_list])
                assert np.array_equal(row, m.hashvalues), (tokenizer, scheme)
    sigs = minhash_signatures(texts)
    assert sigs.dtype == np.uint64
    # Internal batching (documents per batch, shingles per permutation chunk) must not change any row.
    monkeypatch.setattr(dedup_module, "_DOC_BATCH", 3)
    monkeypatch.setattr(dedup_module, "_CHUNK_SHINGLES", 40)
    assert np.array_equal(minhash_signatures(texts), sigs)
    monkeypatch.undo()
    assert minhash_signatures(texts, seed=2)[0].tolist() != sigs[0].tolist()

    # Estimates: ours ~= datasketch's default MinHash (SHA1, affine32) built by update() ~= exact Jaccard.
    ref = []
    for shingle_list in sh[:4]:
        m = MinHash(num_perm=112, seed=1)
        for s in shingle_list:
            m.update(s.encode())
        ref.append(m)
    for j in range(1, 4):
        exact = _jaccard(set(sh[0]), set(sh[j]))
        ours = to_minhash(sigs[0]).jaccard(to_minhash(sigs[j]))
        assert ours == estimated_jaccard(sigs[0], sigs[j])
        theirs = ref[0].jaccard(ref[j])
        print(f"pair 0-{j}: exact {exact:.3f} ours {ours:.3f} datasketch {theirs:.3f}")
        assert abs(ours - theirs) <= 0.1 and abs(ours - exact) <= 0.1
    assert estimated_jaccard(sigs[0], sigs[0]) == 1.0


def test_deduplicate_accounting() -> None:
    texts, _ = _make_corpus(seed=13, n_base=40)
    docs = [Document(i, t, "gen", "web", {"split": "train"}) for i, t in texts.items()]
    random.Random(0).shuffle(docs)
    out = deduplicate(docs)
    assert sorted([d.id for d in out.kept] + [d.id for d, _ in out.dropped]) == sorted(texts)
    assert len(out.kept) + len(out.dropped) == len(docs)
    reasons = {r for _, r in out.dropped}
    assert reasons == {EXACT_DUPLICATE, NEAR_DUPLICATE}
    stats = StageStats("dedup")
    stats.add(out, 0.0)
    stats.check()
    kept_ids = {d.id for d in out.kept}
    for doc, _ in out.dropped:
        survivor = doc.metadata[CLUSTER_KEY]
        assert survivor in kept_ids and survivor < doc.id
    clustered = [d for d in out.kept if CLUSTER_KEY in d.metadata]
    assert clustered and all(d.metadata[CLUSTER_KEY] == d.id for d in clustered)
    assert all(d.metadata["split"] == "train" for d in out.kept)
    assert all(CLUSTER_KEY not in d.metadata for d in docs)  # inputs untouched


def test_mersenne_reduction_matches_modulo() -> None:
    p = (1 << 61) - 1
    edge = [0, 1, p - 1, p, p + 1, 2 * p - 1, 2 * p, 2 * p + 7, (1 << 61) + 6, (1 << 62) - 1, 7 * p, 8 * p - 1,
            (1 << 64) - 1, (1 << 64) - 2, (1 << 64) - 9]
    x = np.concatenate([np.array(edge, dtype=np.uint64),
                        np.random.default_rng(0).integers(0, 1 << 64, 10000, dtype=np.uint64, endpoint=False)])
    expected = x % np.uint64(p)
    assert np.array_equal(dedup_module._mod_mersenne61(x.copy(), np.empty_like(x)), expected)


def test_normalization() -> None:
    messy = "Ｈｅｌｌｏ,\u3000WORLD!\u2028 Don't\t\tstop\x1c—now…"
    assert normalize_text(messy, "words") == "hello world dont stop now"  # the earlier tokens
    assert normalize_text(messy) == 'hello world don " t stop - now'  # code_aware: quotes and dashes fold
    for tokenizer in TOKENIZERS:
        assert shingles("a b c d e f", 5, tokenizer) == ["a b c d e", "b c d e f"]
        assert shingles("A, b; C", 5, tokenizer) == ["a b c"]
        assert exact_key("Hello   World", tokenizer) == exact_key("hello, world!", tokenizer) != \
            exact_key("hello world again", tokenizer)
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        shingles("x", 5, "char")


def test_code_aware_tokens() -> None:
    """Code tokens survive (words: ``selfxa``), formatting does not matter, prose punctuation still separates."""
    assert normalize_text("self.x(a)") == "self . x ( a )"
    assert normalize_text("self.x(a)", "words") == "selfxa"
    # Reformatting (operator/comma/bracket spacing, indentation, quote style) keeps the token sequence.
    variants = ["def f(a,b=1):\n    return a[b]+'s'", "def f( a, b = 1 ):\n\treturn a[ b ] + \"s\"",
                "def f(a, b=1):\n  return a[b] + `s`"]
    assert len({normalize_text(v) for v in variants}) == 1
    assert normalize_text(variants[0]) == 'def f ( a b = 1 ) return a [ b ] + " s "'
    assert len({normalize_text(v, "words") for v in variants}) == 3  # what the old shingles saw as edits
    # Prose punctuation edits (commas, sentence marks, curly quotes, dashes) change nothing, as with words.
    prose = ["He said \u201cyes\u201d \u2014 twice. Then, e.g. 3.5 more!",
             'He said "yes" -- twice; then e.g. 3.5 more?']
    assert normalize_text(prose[0]) == normalize_text(prose[1]) == 'he said " yes " - twice then e . g 3 . 5 more'
    assert exact_key(prose[0]) == exact_key(prose[1])
    assert [t.decode() for t in tokens("a.b. c..d ...")] == ["a", ".", "b", "c", "d"]


def test_vectorised_lsh_finds_exactly_the_pairs_datasketch_minhashlsh_gives():
    """The deduplicator's candidate pairs (equal band keys, found by sorting) are the pairs a datasketch
    MinHashLSH with the same bands x rows returns when every document queries the ones inserted before it."""
    from datasketch import MinHashLSH

    from infir.data.curation.dedup import MinHashDeduplicator, to_minhash

    rng = np.random.default_rng(7)
    base = rng.integers(0, 1 << 63, (60, 112), dtype=np.uint64)
    variants = base[rng.integers(0, 60, 140)].copy()
    noise = rng.random(variants.shape) < rng.uniform(0.05, 0.6, (140, 1))  # near and far copies
    variants[noise] = rng.integers(0, 1 << 63, int(noise.sum()), dtype=np.uint64)
    sigs = np.concatenate([base, variants])
    ids = [f"d{i:03d}" for i in range(len(sigs))]
    dedup = MinHashDeduplicator(threshold=0.8, num_perm=112)
    dedup.add(ids[:90], sigs[:90])  # two batches: pairs across batches count too
    dedup.add(ids[90:], sigs[90:])
    lsh = MinHashLSH(threshold=0.8, num_perm=112, params=(dedup.bands, dedup.rows))
    expected = 0
    verified = set()
    for i, sig in enumerate(sigs):
        mh = to_minhash(sig)
        for j in lsh.query(mh):
            expected += 1
            if np.count_nonzero(sigs[j] == sig) >= dedup.min_agree:
                verified.add((j, i))
        lsh.insert(i, mh)
    assert expected > 100 and 0 < len(verified) < expected
    assert dedup.stats["lsh_candidates"] == expected and dedup.stats["verified_pairs"] == len(verified)
    clusters = {frozenset(m) for m in dedup.clusters().values()}
    parent = list(range(len(sigs)))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for j, i in verified:
        parent[max(find(i), find(j))] = min(find(i), find(j))
    groups: dict[int, set] = {}
    for i in range(len(sigs)):
        groups.setdefault(find(i), set()).add(ids[i])
    assert clusters == {frozenset(g) for g in groups.values() if len(g) > 1}
