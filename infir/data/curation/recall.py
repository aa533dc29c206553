"""Stage 2, reasoning-oriented recall: one fastText classifier per domain (DeepSeekMath-style).

Each domain's classifier is trained on its seed positives (e.g. OpenWebMath for
math at paper scale; the embedded math and code sources here) against general
negatives: a random sample of the pool being curated (DeepSeekMath's recipe:
"random Common Crawl pages"), minus seed documents and their copies, plus any
configured negative sources. A document keeps its place if its own domain's
classifier gives it probability >= tau; documents of an unlabelled pool domain
(``web``) are scored by every classifier and join the best domain above its tau,
or are dropped. Scores go into ``metadata["recall_score"]``.

It is a global stage: the pool sample needs every shard, and the classifiers are
cached artifacts (same seeds + sample + hyperparameters -> same model, reused by
every recipe and sweep job).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from infir.data.curation.base import StageOutput, in_sample, threshold_reason
from infir.data.curation.fasttext_model import FastTextClassifier, FastTextParams, train_classifier
from infir.data.documents import TRAIN, Document

log = logging.getLogger(__name__)

NEGATIVE_LABEL = "other"


def _line_hashes(text: str, min_chars: int = 30) -> list[bytes]:
    """Hashes of a text's substantial lines (whitespace-normalised)."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return [hashlib.blake2b(line.encode("utf-8", "surrogatepass"), digest_size=12).digest()
            for line in lines if len(line) >= min_chars]


class SeedCopies:
    """Recognises copies of seed documents among sampled negatives: a text most of whose
    substantial lines are seed lines. Exact hashes are not enough: heuristic stages rewrite
    documents (C4's line filter drops headings), and near-duplicates or pages with a pasted
    item keep most lines; as negatives they would contradict their own seed."""

    def __init__(self, seed_texts: Sequence[str], min_shared: float = 0.5) -> None:
        self.lines = {h for text in seed_texts for h in _line_hashes(text)}
        self.texts = set(seed_texts)
        self.min_shared = min_shared

    def __contains__(self, text: str) -> bool:
        if text in self.texts:
            return True
        hashes = _line_hashes(text)
        return bool(hashes) and sum(h in self.lines for h in hashes) >= self.min_shared * len(hashes)


@dataclass
class RecallDecision:
    """What the apply pass needs: one classifier and one threshold per domain (picklable)."""

    classifiers: dict[str, FastTextClassifier]
    thresholds: dict[str, float]

    def scores(self, domain: str, texts: Sequence[str]) -> np.ndarray:
        """Probability of ``domain`` for each text under that domain's classifier."""
        classifier = self.classifiers[domain]
        return classifier.probabilities(list(texts))[:, classifier.labels.index(domain)]


class ReasoningRecallStage:
    """Keep documents that their domain's recall classifier scores >= tau (see module docstring).

    ``seeds`` maps a domain to document sources whose training split are its positives;
    ``negatives`` are extra negative sources (training split); ``pool_negative_rate`` is the
    share of the pool sampled as negatives (0 disables). ``seed_fraction`` < 1 trains on a
    deterministic subset of the seeds (to measure recall on the rest).
    """

    def __init__(self, name: str, seeds: Mapping[str, Sequence[Any]], cache_dir: str,
                 negatives: Sequence[Any] = (), pool_negative_rate: float = 0.5,
                 threshold: float | Mapping[str, float] = 0.5, pool_domains: Sequence[str] = ("web",),
                 seed_fraction: float = 1.0, max_examples_per_label: int = 50_000,
                 params: FastTextParams | dict[str, Any] | None = None, salt: str = "recall") -> None:
        if not seeds:
            raise ValueError(f"curation stage {name}: seeds must name at least one domain with seed sources")
        empty = sorted(domain for domain, sources in seeds.items() if not sources)
        if empty:
            raise ValueError(f"curation stage {name}: seeds.{empty[0]} lists no sources")
        if not 0.0 <= pool_negative_rate <= 1.0:
            raise ValueError(f"curation stage {name}: pool_negative_rate must be in [0, 1], got {pool_negative_rate}")
        if pool_negative_rate == 0.0 and not negatives:
            raise ValueError(f"curation stage {name}: no negatives (pool_negative_rate is 0 and negatives is empty)")
        if not 0.0 < seed_fraction <= 1.0:
            raise ValueError(f"curation stage {name}: seed_fraction must be in (0, 1], got {seed_fraction}")
        thresholds = dict(threshold) if isinstance(threshold, Mapping) else {d: float(threshold) for d in seeds}
        unknown = sorted(set(thresholds) - set(seeds))
        missing = sorted(set(seeds) - set(thresholds))
        if unknown or missing:
            raise ValueError(f"curation stage {name}: threshold keys must be the seed domains {sorted(seeds)}; "
                             f"unknown {unknown}, missing {missing}")
        self.name = name
        self.seeds = {domain: list(sources) for domain, sources in seeds.items()}
        self.negatives = list(negatives)
        self.cache_dir = cache_dir
        self.pool_negative_rate = pool_negative_rate
        self.thresholds = {d: float(t) for d, t in thresholds.items()}
        self.pool_domains = set(pool_domains)
        self.seed_fraction = seed_fraction
        self.max_examples_per_label = max_examples_per_label
        self.params = FastTextParams.from_config(params)
        self.salt = salt

    # -- global stage protocol ------------------------------------------------------------------

    def summarise(self, docs: list[Document]) -> list[str]:
        """This shard's share of the negative sample (drawn by document id, layout-independent)."""
        if self.pool_negative_rate == 0.0:
            return []
        return [d.text for d in docs if in_sample(d.id, self.pool_negative_rate, self.salt)]

    def decide(self, summaries: Sequence[list[str]]) -> RecallDecision:
        positives = self._seed_texts()
        seed_copies = SeedCopies([t for texts in positives.values() for t in texts])
        candidates = [t for texts in summaries for t in texts] + self._source_texts(self.negatives)
        negatives = [t for t in candidates if t not in seed_copies]
        log.info("recall: %d sampled negatives, %d left out as copies of seed documents", len(negatives),
                 len(candidates) - len(negatives))
        if not negatives:
            raise ValueError(f"curation stage {self.name}: the negative sample is empty (every sampled document "
                             "is a seed or a copy of one); raise pool_negative_rate or add negatives")
        negatives = negatives[: self.max_examples_per_label]
        classifiers = {}
        for domain, texts in positives.items():
            examples = [(domain, t) for t in texts] + [(NEGATIVE_LABEL, t) for t in negatives]
            path = train_classifier(examples, self.params, self.cache_dir, f"recall_{domain}")
            classifiers[domain] = FastTextClassifier(path, self.params.max_chars)
            log.info("recall %s: %d positives vs %d negatives, tau %.2f", domain, len(texts), len(negatives),
                     self.thresholds[domain])
        return RecallDecision(classifiers, self.thresholds)

    def apply(self, docs: list[Document], decision: RecallDecision) -> StageOutput:
        scores: list[dict[str, float]] = [{} for _ in docs]  # by position: ids need not be unique
        for domain in decision.classifiers:
            batch = [i for i, d in enumerate(docs) if d.domain == domain or d.domain in self.pool_domains]
            if batch:
                for i, p in zip(batch, decision.scores(domain, [docs[i].text for i in batch])):
                    scores[i][domain] = float(p)
        output = StageOutput()
        for doc, doc_scores in zip(docs, scores):
            if not doc_scores:  # a domain with no classifier and not a pool domain: not this stage's call
                output.add(doc, None)
            elif doc.domain in self.pool_domains:
                best = max(doc_scores, key=lambda d: doc_scores[d] - decision.thresholds[d])
                doc.metadata["recall_scores"] = {d: round(p, 4) for d, p in doc_scores.items()}
                if doc_scores[best] >= decision.thresholds[best]:
                    doc.metadata["pool_domain"], doc.domain = doc.domain, best
                    output.add(doc, None)
                else:
                    output.add(doc, "recall_no_domain")
            else:
                output.add(doc, threshold_reason(doc, doc_scores[doc.domain], decision.thresholds[doc.domain],
                                                 "recall", "recall_score"))
        return output

    # -- seeds -----------------------------------------------------------------------------------

    @staticmethod
    def _training_docs(sources: Sequence[Any]) -> list[Document]:
        return [d for source in sources for d in source.documents() if d.split == TRAIN and d.text.strip()]

    def _source_texts(self, sources: Sequence[Any]) -> list[str]:
        return [d.text for d in self._training_docs(sources)]

    def _seed_texts(self) -> dict[str, list[str]]:
        positives = {}
        for domain, sources in self.seeds.items():
            texts = [d.text for d in self._training_docs(sources)
                     if in_sample(d.id, self.seed_fraction, f"{self.salt}:seed")]
            if not texts:
                raise ValueError(f"curation stage {self.name}: the seed sources of domain {domain!r} yield no "
                                 "training documents")
            positives[domain] = texts[: self.max_examples_per_label]
        return positives

