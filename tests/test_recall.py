"""Stage 2, reasoning-oriented recall: generalisation to unseen documents, caching, pool routing."""

from __future__ import annotations

import pytest

from infir.data.curation.base import in_sample
from infir.data.curation.recall import ReasoningRecallStage
from infir.data.documents import Document
from infir.data.sources.champ import ChampSource
from infir.data.sources.procedural import ProceduralSource
from infir.data.sources.python_docs import PythonDocsSource
from infir.data.sources.raw_crawl import RawCrawlSource
from infir.data.sources.stdlib_code import StdlibCodeSource

JUNK = {"off_topic": 300, "boilerplate": 40, "spam": 40, "non_english": 40}


class ListSource:
    """A fixed list of documents as a source."""

    name, domain = "list", "mixed"

    def __init__(self, docs: list[Document]) -> None:
        self.docs = docs

    def documents(self):
        return iter(self.docs)

    def fingerprint(self) -> str:
        return str(len(self.docs))


def seeds() -> dict[str, list]:
    return {"math": [ChampSource(), ProceduralSource(n_train=300)], "code": [StdlibCodeSource(max_files=120)],
            "prose": [PythonDocsSource()]}


def junk(seed: int) -> list[Document]:
    crawl = RawCrawlSource(seed=seed, noise=JUNK, max_code_files=0, n_procedural=0)
    return [d for d in crawl.documents() if d.metadata["noise"] != "clean"]


@pytest.fixture(scope="module")
def held_out_evaluation(tmp_path_factory):
    """Train on half the seeds and junk from one crawl seed; score the other half and fresh junk."""
    stage = ReasoningRecallStage("recall", seeds(), str(tmp_path_factory.mktemp("classifiers")),
                                 negatives=[ListSource(junk(seed=1))], pool_negative_rate=0.0, seed_fraction=0.5)
    decision = stage.decide([])
    unseen_clean = [d for sources in seeds().values() for s in sources for d in s.documents()
                    if d.split == "train" and not in_sample(d.id, 0.5, "recall:seed")]
    fresh_junk = junk(seed=2)
    output = stage.apply(unseen_clean + fresh_junk, decision)
    return unseen_clean, fresh_junk, output


def test_recall_keeps_unseen_reasoning_documents_and_drops_general_web(held_out_evaluation):
    unseen_clean, fresh_junk, output = held_out_evaluation
    kept_ids = {id(d) for d in output.kept}
    recall = {}
    for domain in ("math", "code", "prose"):
        docs = [d for d in unseen_clean if d.domain == domain]
        recall[domain] = sum(id(d) in kept_ids for d in docs) / len(docs)
    junk_dropped = sum(id(d) not in kept_ids for d in fresh_junk) / len(fresh_junk)
    clean_ids = {id(c) for c in unseen_clean}
    precision = sum(id(d) in clean_ids for d in output.kept) / len(output.kept)
    print(f"recall of unseen seeds {recall}, junk dropped {junk_dropped:.3f}, precision {precision:.3f}")
    assert min(recall.values()) >= 0.9, recall
    assert junk_dropped >= 0.95, junk_dropped
    assert precision >= 0.95, precision
    off_topic = [d for d in fresh_junk if d.metadata["noise"] == "off_topic"]
    assert sum(id(d) not in kept_ids for d in off_topic) / len(off_topic) >= 0.95


def test_recall_scores_are_stored_and_reasons_name_the_domain(held_out_evaluation):
    _, _, output = held_out_evaluation
    assert all(0.0 <= d.metadata["recall_score"] <= 1.0 for d in output.kept)
    assert {reason for _, reason in output.dropped} <= {"recall_prose_below_threshold",
                                                        "recall_math_below_threshold",
                                                        "recall_code_below_threshold"}
    assert all(d.metadata["recall_score"] < 0.5 for d, _ in output.dropped)


def test_trained_classifier_is_a_cached_artifact(tmp_path):
    negatives = [ListSource(junk(seed=3))]
    small = {"math": [ChampSource()]}
    first = ReasoningRecallStage("recall", small, str(tmp_path), negatives=negatives, pool_negative_rate=0.0)
    path = first.decide([]).classifiers["math"].model_path
    built = path.replace("model.bin", "manifest.json")
    stamp = open(built).read()
    again = ReasoningRecallStage("recall", small, str(tmp_path), negatives=negatives, pool_negative_rate=0.0)
    assert again.decide([]).classifiers["math"].model_path == path
    assert open(built).read() == stamp  # reused, not rebuilt
    other = ReasoningRecallStage("recall", small, str(tmp_path), negatives=negatives, pool_negative_rate=0.0,
                                 seed_fraction=0.5)
    assert other.decide([]).classifiers["math"].model_path != path


def test_pool_sample_excludes_seed_texts_and_unlabelled_documents_join_a_domain(tmp_path):
    math_docs = [d for d in ChampSource().documents() if d.split == "train"]
    stage = ReasoningRecallStage("recall", {"math": [ChampSource()]}, str(tmp_path), pool_negative_rate=1.0)
    with pytest.raises(ValueError, match="negative sample is empty"):
        stage.decide([stage.summarise(math_docs)])  # the pool is only seeds: nothing left as negatives
    pool = [Document(f"web/{i}", d.text, "crawl", "web") for i, d in enumerate(math_docs[:40])]
    pool += [Document(f"web/j{i}", d.text, "crawl", "web") for i, d in enumerate(junk(seed=4))]
    decision = stage.decide([stage.summarise(pool)])
    output = stage.apply(pool, decision)
    assert all(d.domain == "math" and d.metadata["pool_domain"] == "web" for d in output.kept)
    assert sum(d.id.startswith("web/j") for d in output.kept) <= 0.05 * len(pool)
    assert sum(not d.id.startswith("web/j") for d in output.kept) >= 38
    assert {reason for _, reason in output.dropped} == {"recall_no_domain"}


def test_bad_recall_config_names_the_key(tmp_path):
    with pytest.raises(ValueError, match="seeds.code lists no sources"):
        ReasoningRecallStage("recall", {"code": []}, str(tmp_path))
    with pytest.raises(ValueError, match="threshold keys"):
        ReasoningRecallStage("recall", {"math": [ChampSource()]}, str(tmp_path), threshold={"code": 0.5})
    with pytest.raises(ValueError, match="no negatives"):
        ReasoningRecallStage("recall", {"math": [ChampSource()]}, str(tmp_path), pool_negative_rate=0.0)


def test_copies_of_seed_documents_are_recognised_after_rewrites():
    from infir.data.curation.recall import SeedCopies

    seeds_text = [d.text for d in PythonDocsSource().documents() if d.split == "train"][:50]
    copies = SeedCopies(seeds_text)
    original = max(seeds_text, key=len)
    lines = original.splitlines()
    assert "\n".join(lines[4:]) in copies                    # a heuristic stage dropped the heading lines
    assert original.replace(" the ", " a ", 2) in copies      # a near duplicate with small edits
    assert original + "\n\ndef leaked():\n    return 'pasted eval item'\n" in copies
    assert all(page not in copies for page in (d.text for d in junk(seed=5)[:50]))
