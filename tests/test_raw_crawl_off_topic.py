"""The raw crawl's ``off_topic`` pages: fluent general-web English that heuristic filters keep.

They stand for the bulk of a real crawl, which only a reasoning-oriented recall classifier should
drop, so stage 1 must keep them, language ID must call them English, and they must not be
near-duplicates of each other (else dedup, not recall, would remove them).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter

import pytest
import yaml
from conftest import REPO
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from infir.data.curation.dedup import shingles
from infir.data.curation.heuristics import GopherRepetitionFilter
from infir.data.curation.langid import FastTextLanguageFilter
from infir.data.documents import Document
from infir.data.sources.raw_crawl import RawCrawlSource
from infir.data.sources.web_templates import TOPICS

N_PAGES = 200
SMALL = {"max_code_files": 5, "n_procedural": 10}


def _off_topic_docs(seed: int) -> list[Document]:
    docs = RawCrawlSource(seed=seed, noise={"off_topic": N_PAGES}, **SMALL).documents()
    return [d for d in docs if d.metadata["noise"] == "off_topic"]


def _copy(doc: Document) -> Document:  # stages may rewrite text and metadata
    return Document(doc.id, doc.text, doc.source, doc.domain, dict(doc.metadata))


@pytest.fixture(scope="module")
def pages() -> list[Document]:
    return _off_topic_docs(seed=0)


def test_pages_are_labelled_prose_from_every_topic(pages):
    assert len(pages) == N_PAGES
    assert {d.domain for d in pages} == {"prose"} and {d.source for d in pages} == {"raw_crawl"}
    topics = Counter(d.metadata["topic"] for d in pages)
    assert set(topics) == set(TOPICS) and min(topics.values()) >= 10
    lengths = [len(d.text.split()) for d in pages]
    assert min(lengths) < 250 and max(lengths) > 450  # short and long pages, not one size
    for d in pages:
        n_words = len(d.text.split())
        paragraphs = d.text.split("\n\n")
        assert 150 <= n_words <= 600, n_words
        assert 3 <= len(paragraphs) <= 8  # 3-7 body paragraphs plus an optional title line
        assert all(p.lstrip('"')[0].isupper() for p in paragraphs)
        assert paragraphs[-1].endswith((".", "!", "?", '"'))
        assert not re.search(r"[{}\[\]|#=<>$\\]|\.\.\.|def |\d", d.text), d.text  # no templates, code or math


def test_heuristic_stage_keeps_off_topic_pages(pages):
    with initialize_config_dir(str(REPO / "conf"), version_base=None):
        cfg = compose("curate", overrides=["curation=heuristic"])
    stage = instantiate(cfg.curation.stages.heuristic, name="heuristic")
    out = stage([_copy(d) for d in pages])
    keep_rate = len(out.kept) / len(pages)
    print(f"heuristic stage keeps {keep_rate:.3f} of off_topic pages; drops: {Counter(r for _, r in out.dropped)}")
    assert len(out.kept) + len(out.dropped) == len(pages)
    assert keep_rate >= 0.90


def test_pages_never_repeat_themselves(pages):
    rule = GopherRepetitionFilter(applies_to=None)
    assert [(d.id, rule.check(d)) for d in pages if rule.check(d)] == []


def test_language_id_says_confident_english(pages):
    lid = FastTextLanguageFilter(languages=["en"], min_score=0.65, applies_to=["prose"])
    docs = [_copy(d) for d in pages]
    english = sum(lid.drop_reason(d) is None for d in docs) / len(docs)
    print(f"English with score >= 0.65: {english:.3f}; lowest score {min(d.metadata['language_score'] for d in docs)}")
    assert english >= 0.95


def test_pages_are_not_near_duplicates_of_each_other(pages):
    grams = [set(shingles(d.text)) for d in pages]
    jaccard = [len(a & b) / len(a | b) for a, b in itertools.combinations(grams, 2)]
    print(f"word 5-gram Jaccard over {len(jaccard)} pairs: max {max(jaccard):.3f}, mean {sum(jaccard) / len(jaccard):.4f}")
    assert max(jaccard) < 0.5  # MinHash dedup runs at 0.8; random pairs stay far below either
    assert len({d.text for d in pages}) == len(pages)


def test_pages_are_deterministic_for_a_seed(pages):
    assert [d.text for d in _off_topic_docs(seed=0)] == [d.text for d in pages]
    other = {d.text for d in _off_topic_docs(seed=1)}
    assert not other & {d.text for d in pages}


def test_default_crawl_and_config_include_off_topic_pages():
    config = yaml.safe_load((REPO / "conf" / "data_mix" / "raw_crawl.yaml").read_text())
    noise = config["sources"]["raw_crawl"]["noise"]
    assert RawCrawlSource().noise == noise and noise["off_topic"] == 1000
