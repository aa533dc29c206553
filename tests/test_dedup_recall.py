"""MinHash dedup recall/precision on planted near duplicates, code and prose separately; the derived agreement count.

The corpus is ``benchmarks/near_dup_corpus.py``'s (real stdlib code and Python docs prose, planted copies with
renames, literal changes, line edits, reformatting / word substitutions, sentence edits, punctuation changes,
plus related documents sharing 60-80 % of another). The earlier configuration (punctuation-deleting ``words``
shingles, FineWeb's 14 x 8 bands, "estimated Jaccard >= t") is run on the same corpus as the control.
"""

from __future__ import annotations

import random

import pytest
from scipy.stats import binom

from benchmarks.near_dup_corpus import (
    DOMAINS,
    MAX_CHARS,
    MIN_CHARS,
    OLD_SETTING,
    configured_setting,
    generate_corpus,
    run_dedup,
    score_dedup,
    word_ngram_jaccard,
)
from infir.data.curation.dedup import (
    DEFAULT_FN_RATE,
    DEFAULT_TOKENIZER,
    TOKENIZERS,
    MinHashDeduplicator,
    acceptance_probability,
    min_agreement,
    shingles,
)

THRESHOLD = 0.8


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(4000, 400, seed=1)


@pytest.fixture(scope="module")
def scores(corpus):
    """Scores of the configured setting (conf/curation/stages/dedup.yaml) and of the earlier one."""
    configured = configured_setting()
    assert configured.get("threshold") == THRESHOLD
    out = {}
    signatures = {}  # per tokenizer: "old agreement rule" reuses the configured setting's signatures
    for name, setting in (("configured", configured), ("before", {**configured, **OLD_SETTING}),
                          ("old agreement rule", {**configured, "fn_rate": None})):
        tokenizer = setting.get("tokenizer", DEFAULT_TOKENIZER)
        if tokenizer not in signatures:
            signatures[tokenizer] = MinHashDeduplicator(**setting).signatures_and_keys(
                [d.text for d in corpus.documents])
        clusters, seconds = run_dedup(corpus, signatures[tokenizer], **setting)
        out[name] = score_dedup(corpus, clusters, THRESHOLD)
        print(f"\n{name}: {seconds:.1f}s " + "; ".join(
            f"{d} recall {s.recall:.3f} (J>=t {s.recall_at_threshold:.3f}, {s.pairs_at_threshold}/{s.pairs}) "
            f"precision {s.precision:.3f} ({s.dropped} dropped)" for d, s in out[name].items()))
    return out


def test_corpus_shape(corpus):
    docs = corpus.documents
    assert len(docs) == 4000 and len({d.id for d in docs}) == 4000
    assert sum(d.domain == "code" for d in docs) == 2000 and sum(d.domain == "prose" for d in docs) == 2000
    assert all(MIN_CHARS <= len(d.text) <= MAX_CHARS for d in docs)
    assert sorted(d for _, _, d in corpus.pairs).count("code") == 200 == len(corpus.pairs) - 200
    by_id = corpus.by_id
    assert all(by_id[a].domain == by_id[b].domain == d for a, b, d in corpus.pairs + corpus.related)
    jaccard = {d: [corpus.jaccard(a, b) for a, b, dd in corpus.pairs if dd == d] for d in DOMAINS}
    for d, js in jaccard.items():  # edit strength spreads the pairs around the threshold, mostly above it
        assert 0.9 < sum(j >= THRESHOLD for j in js) / len(js) < 1.0 and min(js) < 0.78 and max(js) > 0.97, d
    assert max(corpus.jaccard(a, b) for a, b, _ in corpus.related) <= 0.65
    # The fast n-gram sets are exactly the dedup's shingle sets.
    for a, b, _ in corpus.pairs[:10]:
        for tokenizer in TOKENIZERS:
            x, y = by_id[a].text, by_id[b].text
            assert {" ".join(t.decode() for t in g) for g in corpus.ngram_set(a, 5, tokenizer)} == \
                set(shingles(x, 5, tokenizer))
            sx, sy = set(shingles(x, 5, tokenizer)), set(shingles(y, 5, tokenizer))
            assert word_ngram_jaccard(x, y, 5, tokenizer) == len(sx & sy) / len(sx | sy)
    small = generate_corpus(300, 20, seed=1)
    again = generate_corpus(300, 20, seed=1)
    assert [(d.id, d.text) for d in small.documents] == [(d.id, d.text) for d in again.documents]
    assert small.pairs == again.pairs
    assert [d.text for d in generate_corpus(300, 20, seed=2).documents] != [d.text for d in small.documents]


def test_recall_and_precision_per_domain(scores):
    for domain, s in scores["configured"].items():
        assert s.recall >= 0.97 and s.precision >= 0.97, (domain, s)
        assert s.recall_at_threshold >= 0.98, (domain, s)


def test_earlier_setting_is_worse_on_code(scores):
    new, old = scores["configured"], scores["before"]
    # Deleted punctuation glues code tokens together and makes spacing an edit: most reformatted copies are lost.
    assert old["code"].recall < new["code"].recall - 0.2
    assert old["prose"].recall <= new["prose"].recall  # prose is no worse
    # The agreement count alone: "estimated Jaccard >= t" rejects about half the pairs at the threshold.
    rule = scores["old agreement rule"]
    assert sum(s.caught for s in rule.values()) < sum(s.caught for s in new.values()) - 5


def test_min_agreement_meets_the_stated_fn_rate():
    for t, n, fn in [(0.8, 112, 0.05), (0.8, 112, 0.02), (0.7, 128, 0.05), (0.9, 256, 0.01), (0.5, 64, 0.1)]:
        k = min_agreement(t, n, fn)
        # P[Binomial(n, t) < k] <= fn, and k is the largest such count (one more would exceed it).
        assert binom.cdf(k - 1, n, t) <= fn < binom.cdf(k, n, t), (t, n, fn, k)
        assert acceptance_probability(t, n, k) == pytest.approx(binom.sf(k - 1, n, t), abs=1e-12)
    k = min_agreement(0.8, 112, DEFAULT_FN_RATE)
    assert k == 82 and min_agreement(0.8, 112, None) == 90  # the earlier rule: ceil(t * num_perm)
    assert acceptance_probability(0.7, 112, k) == pytest.approx(0.264, abs=0.001)  # FP side, 0.1 below t
    with pytest.raises(ValueError, match="fn_rate"):
        min_agreement(0.8, 112, 1.5)
    with pytest.raises(ValueError, match="tokenizer"):
        MinHashDeduplicator(tokenizer="chars")


def test_pairs_at_exactly_the_threshold_are_caught_at_the_stated_rate():
    """400 pairs of token sets with Jaccard exactly 0.8 (900 tokens each, 800 shared; ngram=1 makes tokens the
    shingles): the configured deduplicator misses about fn_rate of them plus the LSH misses (0.4 %); the earlier
    rule about half."""
    rng = random.Random(0)
    ids, texts = [], []
    for p in range(400):
        words = [f"p{p}w{rng.getrandbits(48):x}" for _ in range(1000)]
        texts += [" ".join(words[:900]), " ".join(words[100:])]
        ids += [f"{p:03d}a", f"{p:03d}b"]
    missed = {}
    for name, setting in (("configured", configured_setting()), ("before", {**configured_setting(), **OLD_SETTING})):
        dedup = MinHashDeduplicator(**{**setting, "ngram": 1})
        dedup.add_texts(ids, texts)
        clusters = dedup.clusters()
        assert all(len(m) == 2 and m[0][:3] == m[1][:3] for m in clusters.values())  # no cross-pair merges
        missed[name] = 1 - len(clusters) / 400
    print(f"\nmissed at J = 0.8 exactly: {missed}")
    assert missed["configured"] <= 0.065 and missed["before"] >= 0.35
