"""Stage 4, quality assessment: a per-domain 0-5 scorer trained from labelled seeds.

FineWeb-Edu's recipe, CPU-sized: label a sample of the pool (a teacher LLM at
paper scale, documented heuristics in the embedded default; see
``quality_labels``), train a fastText classifier over the score classes, and
score every document with the expected score sum_k k * P(k). Documents keep
their place if the score reaches their domain's threshold; the score goes into
``metadata["quality_score"]``. FineWeb-Edu keeps round(score) >= 3, i.e.
score >= 2.5.

A global stage: the labelled sample is drawn from every shard (by document id, so
independent of sharding) and the scorer is a cached artifact.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from infir.data.curation.base import StageOutput, in_sample, threshold_reason
from infir.data.curation.fasttext_model import FastTextClassifier, FastTextParams, train_classifier
from infir.data.curation.quality_labels import QualityLabeler
from infir.data.documents import Document

log = logging.getLogger(__name__)


@dataclass
class QualityDecision:
    scorers: dict[str, FastTextClassifier]
    thresholds: dict[str, float]

    def scores(self, domain: str, texts: Sequence[str]) -> np.ndarray:
        """Expected quality score of each text under ``domain``'s scorer."""
        scorer = self.scorers[domain]
        values = np.array([float(label) for label in scorer.labels])
        return scorer.probabilities(list(texts)) @ values


class QualityScoringStage:
    """Score documents of the labelled domains and keep those >= their domain's threshold.

    ``labelers`` maps a domain to its labeler; ``thresholds`` gives each such domain its
    minimum expected score; ``sample_rate`` is the share of the pool labelled for training.
    Documents of other domains pass through unscored.
    """

    def __init__(self, name: str, labelers: Mapping[str, QualityLabeler], thresholds: Mapping[str, float],
                 cache_dir: str, sample_rate: float = 0.5, max_examples: int = 100_000,
                 params: FastTextParams | dict[str, Any] | None = None, salt: str = "quality") -> None:
        if not labelers:
            raise ValueError(f"curation stage {name}: labelers must name at least one domain")
        if set(thresholds) != set(labelers):
            raise ValueError(f"curation stage {name}: thresholds must cover exactly the labelled domains "
                             f"{sorted(labelers)}, got {sorted(thresholds)}")
        for domain, labeler in labelers.items():
            if not isinstance(labeler, QualityLabeler):
                raise TypeError(f"curation stage {name}: labelers.{domain} is {type(labeler).__name__}, "
                                "not a QualityLabeler")
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"curation stage {name}: sample_rate must be in (0, 1], got {sample_rate}")
        self.name = name
        self.labelers = dict(labelers)
        self.thresholds = {d: float(t) for d, t in thresholds.items()}
        self.cache_dir = cache_dir
        self.sample_rate = sample_rate
        self.max_examples = max_examples
        self.params = FastTextParams.from_config(params)
        self.salt = salt

    def summarise(self, docs: list[Document]) -> list[tuple[str, int | None, str]]:
        """Labels for this shard's share of the training sample: ``(domain, label, text)``."""
        return [(d.domain, self.labelers[d.domain].label(d.text), d.text) for d in docs
                if d.domain in self.labelers and in_sample(d.id, self.sample_rate, self.salt)]

    def decide(self, summaries: Sequence[list[tuple[str, int | None, str]]]) -> QualityDecision:
        by_domain: dict[str, list[tuple[str, str]]] = {d: [] for d in self.labelers}
        unlabelled: Counter = Counter()
        for summary in summaries:
            for domain, label, text in summary:
                if label is None:
                    unlabelled[domain] += 1
                else:
                    by_domain[domain].append((str(label), text))
        if unlabelled:
            log.warning("quality: %s sampled documents got no label (teacher answer without a score); "
                        "they are left out of training", dict(unlabelled))
        scorers = {}
        for domain, examples in by_domain.items():
            counts = Counter(label for label, _ in examples)
            if not examples:  # no document of this domain in the sample (nor, almost surely, the pool)
                log.info("quality %s: no sampled documents, no scorer", domain)
                continue
            if len(counts) < 2:
                raise ValueError(f"curation stage {self.name}: the labelled sample of domain {domain!r} has label "
                                 f"counts {dict(counts)}; a scorer needs at least two distinct labels (raise "
                                 "sample_rate or check the labeler)")
            log.info("quality %s: label counts %s", domain, dict(sorted(counts.items())))
            path = train_classifier(examples[: self.max_examples], self.params, self.cache_dir, f"quality_{domain}")
            scorers[domain] = FastTextClassifier(path, self.params.max_chars)
        return QualityDecision(scorers, self.thresholds)

    def apply(self, docs: list[Document], decision: QualityDecision) -> StageOutput:
        score_of: dict[int, float] = {}  # by position: ids need not be unique across inputs
        for domain in decision.scorers:
            batch = [i for i, d in enumerate(docs) if d.domain == domain]
            if batch:
                score_of.update(zip(batch, decision.scores(domain, [docs[i].text for i in batch])))
        output = StageOutput()
        for i, doc in enumerate(docs):
            if i not in score_of:
                output.add(doc, None)
                continue
            output.add(doc, threshold_reason(doc, float(score_of[i]), decision.thresholds[doc.domain], "quality",
                                             "quality_score"))
        return output
