"""Stage 4, quality scoring: the labelers' rules, the trained scorer, and label accounting."""

from __future__ import annotations

import numpy as np
import pytest

from infir.data.curation.base import in_sample
from infir.data.curation.quality import QualityScoringStage
from infir.data.curation.quality_labels import (EduHeuristicLabeler, MathHeuristicLabeler, QualityLabeler,
                                                parse_teacher_score)
from infir.data.documents import Document
from infir.data.sources.raw_crawl import RawCrawlSource

DOCS_PAGE = """Sorting lists
*************

The "sorted()" function returns a new sorted list from the items of an iterable. The method
"list.sort()" sorts a list in place and returns None, which is why it is used when the original
order is not needed. Both accept a key function and a reverse argument; the key is called once for
each element and the result is used for the comparisons.

For example, sorting strings without regard to case uses a key function:

   >>> sorted("This is a test string".split(), key=str.lower)
   ['a', 'is', 'string', 'test', 'This']

Sorts are guaranteed to be stable. That means that when multiple records have the same key, their
original order is preserved, which is useful because a sort can then be done in several passes.
Note that the default comparison raises an exception when the types of the values differ.
"""

TRAVEL_PAGE = """Our weekend in Lisbon

We finally made it to Lisbon and I have to say it was amazing! The hotel was gorgeous and the view
from our balcony was stunning. My partner and I loved every minute of the trip.

On the first day we had the most delicious pastries near the river. The cafe was cozy and the staff
were lovely. We enjoyed a long walk up the hill and took so many photos.

The best part was the sunset dinner. If you love good food, book a table early. I cannot wait to go
back next summer with the whole family!
"""

SOLUTION = """Find the sum of all positive integers $n$ such that $n^2 - 19n + 99$ is a perfect square.
Solution: Let $n^2 - 19n + 99 = k^2$. Then $4n^2 - 76n + 396 = 4k^2$, so $(2n - 19)^2 - 4k^2 = -35$.
Thus $(2k - 2n + 19)(2k + 2n - 19) = 35$, which gives the factor pairs 1 x 35 and 5 x 7.
Hence $n \\in \\{1, 9, 10, 18\\}$ and the answer is $\\boxed{38}$."""


@pytest.mark.parametrize("text, low, high", [
    (DOCS_PAGE, 4, 5),                                           # explanatory, with an example
    (TRAVEL_PAGE, 1, 2),                                         # fluent but personal/promotional
    ("Home\nAbout us\nContact\nPrivacy Policy\nCookie settings", 0, 0),   # boilerplate: no sentences
    ("Der Hund ist nicht mit dem Auto in die Stadt gefahren. Es war ein langer Tag. "
     "Wir haben noch Zeit. Die Stadt ist schön.", 0, 0),         # not English
    ("", 0, 0),
])
def test_edu_labeler_follows_the_additive_criteria(text, low, high):
    assert low <= EduHeuristicLabeler().label(text) <= high


@pytest.mark.parametrize("text, expected", [
    (SOLUTION, 5),                                               # problem, notation, reasoning, answer
    (SOLUTION.split("Solution:")[0] + "Solution:", 3),           # a stub: problem and notation only
    ("The weather was nice and we walked to the park.", 1),      # no mathematics at all
    ("Compute 3 + 4. We get 3 + 4 = 7, so the answer is 7.", 5),
])
def test_math_labeler_scores_one_to_five(text, expected):
    assert MathHeuristicLabeler().label(text) == expected


@pytest.mark.parametrize("answer, expected", [
    ("The extract is informative.\nEducational score: 4", 4),
    ("Educational Score: 2 ... after reflection, Educational score: 3", 3),
    ("score: 9", None),
    ("I cannot rate this.", None),
])
def test_teacher_answers_are_parsed_or_rejected(answer, expected):
    assert parse_teacher_score(answer) == expected


@pytest.fixture(scope="module")
def crawl() -> list[Document]:
    noise = {"off_topic": 300, "boilerplate": 40, "spam": 40, "non_english": 40}
    return [d for d in RawCrawlSource(noise=noise, max_code_files=40, n_procedural=300).documents()]


@pytest.fixture(scope="module")
def scored(crawl, tmp_path_factory):
    stage = QualityScoringStage("quality", {"prose": EduHeuristicLabeler(), "math": MathHeuristicLabeler()},
                                {"prose": 2.5, "math": 2.5}, str(tmp_path_factory.mktemp("classifiers")))
    decision = stage.decide([stage.summarise(crawl[::2]), stage.summarise(crawl[1::2])])
    return stage, decision


def test_scorer_reproduces_labels_on_documents_it_was_not_trained_on(crawl, scored):
    stage, decision = scored
    unseen = [d for d in crawl if d.domain == "prose" and not in_sample(d.id, stage.sample_rate, stage.salt)]
    labels = np.array([EduHeuristicLabeler().label(d.text) for d in unseen])
    scores = decision.scores("prose", [d.text for d in unseen])
    mae, agreement = np.abs(scores - labels).mean(), ((scores >= 2.5) == (labels >= 3)).mean()
    print(f"quality scorer, {len(unseen)} unseen prose documents: MAE {mae:.3f}, keep/drop agreement {agreement:.3f}")
    assert mae <= 0.8 and agreement >= 0.9


def test_quality_stage_keeps_documentation_and_drops_general_web(crawl, scored):
    stage, decision = scored
    output = stage.apply([Document(d.id, d.text, d.source, d.domain, dict(d.metadata)) for d in crawl], decision)
    kept = {d.id for d in output.kept}
    docs = [d for d in crawl if d.source == "python_docs"]
    off_topic = [d for d in crawl if d.metadata["noise"] == "off_topic"]
    docs_kept = sum(d.id in kept for d in docs) / len(docs)
    web_dropped = sum(d.id not in kept for d in off_topic) / len(off_topic)
    print(f"quality stage: documentation kept {docs_kept:.3f}, general-web pages dropped {web_dropped:.3f}")
    assert docs_kept >= 0.85 and web_dropped >= 0.9
    assert all("quality_score" in d.metadata for d in output.kept if d.domain in ("prose", "math"))
    assert all(d.domain == "code" for d in output.kept if "quality_score" not in d.metadata)
    assert {r for _, r in output.dropped} <= {"quality_prose_below_threshold", "quality_math_below_threshold"}


class FlakyTeacher(QualityLabeler):
    """Answers like a teacher that sometimes gives no score."""

    def label(self, text: str) -> int | None:
        return None if len(text) % 3 == 0 else EduHeuristicLabeler().label(text)


def test_unlabelled_samples_are_counted_and_left_out(crawl, tmp_path, caplog):
    stage = QualityScoringStage("quality", {"prose": FlakyTeacher()}, {"prose": 2.5}, str(tmp_path))
    with caplog.at_level("WARNING"):
        stage.decide([stage.summarise(crawl)])
    assert "got no label" in caplog.text


def test_bad_quality_config_names_the_key(tmp_path):
    with pytest.raises(ValueError, match="thresholds must cover"):
        QualityScoringStage("quality", {"prose": EduHeuristicLabeler()}, {"math": 3}, str(tmp_path))
    with pytest.raises(TypeError, match="labelers.prose"):
        QualityScoringStage("quality", {"prose": "edu"}, {"prose": 3}, str(tmp_path))
    one_label = [Document(f"d{i}", "Home\nContact", "x", "prose") for i in range(20)]
    stage = QualityScoringStage("quality", {"prose": EduHeuristicLabeler()}, {"prose": 3}, str(tmp_path),
                                sample_rate=1.0)
    with pytest.raises(ValueError, match="at least two distinct labels"):
        stage.decide([stage.summarise(one_label)])


def test_teacher_labeler_generates_with_a_local_model_and_rejects_answers_without_a_score(tmp_path):
    import pickle

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from infir.data.curation.quality_labels import EDU_PROMPT, TeacherLabeler
    from infir.models.tokenizer import load_tokenizer, train_bpe

    train_bpe([EDU_PROMPT, DOCS_PAGE, TRAVEL_PAGE] * 3, vocab_size=400, min_frequency=1, out_dir=tmp_path)
    tokenizer = load_tokenizer(tmp_path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    labeler = TeacherLabeler(str(tmp_path), max_new_tokens=8)
    assert labeler.label(DOCS_PAGE) is None  # an untrained model does not answer "score: N"
    assert labeler._model is not None and pickle.loads(pickle.dumps(labeler))._model is None  # workers reload


def test_teacher_labeler_names_a_bad_model_path(tmp_path):
    from infir.data.curation.quality_labels import TeacherLabeler

    with pytest.raises(FileNotFoundError, match="TeacherLabeler.model_path"):
        TeacherLabeler(str(tmp_path / "no-such-model")).label("Some text.")
