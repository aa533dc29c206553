"""Supervised fastText classifiers for curation: cached training and batched scoring.

Recall (stage 2) and quality scoring (stage 4) both train a small fastText model
from labelled examples and score every document with it. Training is a
content-addressed artifact (same examples + hyperparameters -> the same model
directory, reused by every recipe and sweep job); training runs single-threaded
with a fixed seed, so the model is deterministic.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infir.data.cache import cached_artifact

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\w+|[^\w\s]")
_PUNCT_RUN = re.compile(r"([^\w\s])\1+")
LABEL_PREFIX = "__label__"


def classifier_line(text: str, max_chars: int) -> str:
    """One lower-cased line of word and punctuation tokens: fastText splits on whitespace only,
    so ``x=1;`` would otherwise be one opaque token; a prefix bounds the cost of long files.
    Runs of one punctuation character (``*****`` underlines, ``+----+`` table borders) count
    once: layout, not content, and a heuristic stage that strips it must not change the score
    (measured: 96 % -> 100 % of filtered documentation pages recalled)."""
    return " ".join(_TOKEN.findall(_PUNCT_RUN.sub(r"\1", text[:max_chars].lower())))


@dataclass(frozen=True)
class FastTextParams:
    """Hyperparameters of ``fasttext.train_supervised`` (small: models stay a few MB).

    Defaults follow the DeepSeekMath/FineWeb-style recall classifiers (word bigrams, a few
    epochs), scaled down in ``dim``/``bucket`` for CPU-sized corpora.
    """

    dim: int = 32
    epoch: int = 25          # small corpora need many passes: 10 epochs at lr 0.1 learn ~nothing from 50 docs
    lr: float = 0.5
    word_ngrams: int = 2
    min_count: int = 1
    bucket: int = 200_000
    max_chars: int = 4000
    seed: int = 0

    @classmethod
    def from_config(cls, params: FastTextParams | dict[str, Any] | None) -> FastTextParams:
        if params is None or isinstance(params, FastTextParams):
            return params or cls()
        unknown = set(params) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"fasttext params: unknown keys {sorted(unknown)} "
                             f"(known: {sorted(cls.__dataclass_fields__)})")
        return cls(**params)


def train_classifier(examples: Sequence[tuple[str, str]], params: FastTextParams, cache_dir: str | Path,
                     kind: str) -> Path:
    """Train (or reuse) a classifier on ``(label, text)`` pairs; returns the ``model.bin`` path.

    The cache key hashes the exact training lines, so a changed seed set or sample
    trains a new model and an unchanged one is never retrained.
    """
    labels = sorted({label for label, _ in examples})
    if len(labels) < 2:
        raise ValueError(f"{kind}: need examples of at least two labels to train a classifier, got {labels}")
    lines = [f"{LABEL_PREFIX}{label} {classifier_line(text, params.max_chars)}\n" for label, text in examples]
    # fastText reads its file in order; label-sorted blocks would make SGD see one class at a time.
    random.Random(params.seed).shuffle(lines)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode())
    counts = {label: sum(1 for lab, _ in examples if lab == label) for label in labels}

    def build(tmp: Path) -> dict[str, Any]:
        import fasttext

        train_file = tmp / "train.txt"
        train_file.write_text("".join(lines), encoding="utf-8")
        lr = params.lr
        for attempt in range(4):
            try:
                model = fasttext.train_supervised(
                    input=str(train_file), dim=params.dim, epoch=params.epoch, lr=lr, wordNgrams=params.word_ngrams,
                    minCount=params.min_count, bucket=params.bucket, thread=1, seed=params.seed, verbose=0)
                break
            except RuntimeError as err:  # fastText diverges ("Encountered NaN") when lr is too high
                if "NaN" not in str(err) or attempt == 3:
                    raise
                log.warning("%s: fastText diverged at lr %.3g; retrying at lr %.3g", kind, lr, lr / 2)
                lr /= 2
        model.save_model(str(tmp / "model.bin"))
        train_file.unlink()
        return {"examples": counts, "lr": lr}

    spec = {"params": asdict(params), "examples": digest.hexdigest(), "labels": labels}
    artifact = cached_artifact(cache_dir, kind, spec, build)
    log.info("%s classifier %s (examples per label: %s)", kind, artifact, counts)
    return artifact / "model.bin"


class FastTextClassifier:
    """Label probabilities for documents; picklable (workers reload the model from its path)."""

    def __init__(self, model_path: str | Path, max_chars: int) -> None:
        self.model_path = str(model_path)
        self.max_chars = max_chars
        self._model = None

    def __getstate__(self) -> dict[str, Any]:  # fastText models are not picklable
        return {**self.__dict__, "_model": None}

    @property
    def model(self):
        if self._model is None:
            import fasttext

            if not Path(self.model_path).is_file():
                raise FileNotFoundError(f"fastText classifier not found: {self.model_path}")
            self._model = fasttext.load_model(self.model_path)
        return self._model

    @property
    def labels(self) -> list[str]:
        return [label.removeprefix(LABEL_PREFIX) for label in self.model.get_labels()]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), len(labels)]`` probabilities, columns in ``self.labels`` order."""
        labels = self.model.get_labels()
        column = {label: j for j, label in enumerate(labels)}
        out = np.zeros((len(texts), len(labels)), dtype=np.float64)
        if not texts:
            return out
        predicted, probs = self.model.predict([classifier_line(t, self.max_chars) for t in texts], k=-1)
        for i, (row_labels, row_probs) in enumerate(zip(predicted, probs)):
            for label, p in zip(row_labels, row_probs):
                out[i, column[label]] = p
        # fastText's softmax outputs are clipped at 1.00001; keep probabilities in [0, 1].
        return np.clip(out, 0.0, 1.0)
