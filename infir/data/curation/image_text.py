"""Image-text cleaning (PAPER.md §5): drop image-caption pairs whose CLIP similarity is below a threshold.

Records are Documents whose text is the caption and whose ``metadata["image"]`` is the image
path (relative paths resolve against ``metadata["image_root"]``, then the stage's ``image_root``).
Two readers make them: ``ImageTextFileSource`` (LLaVA-style JSON or jsonl ``{"image", "caption"}``)
and ``CaptionPairsSource``, the embedded default: the held-out caption pairs of
``infir.vision.captions`` with a documented share of captions swapped between pairs (injected
mismatches, labelled ``metadata["mismatched"]`` for measurement only; no stage reads it).

``ImageTextSimilarityStage`` is a global stage like recall: ``decide`` trains (or reuses) the tiny
CLIP and calibrates the threshold once in the driver, ``apply`` scores each shard in the pool.
A pair whose image is missing or unreadable is dropped with its own counted, logged reason.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from infir.data.cache import cached_artifact, content_key
from infir.data.curation.base import StageOutput
from infir.data.doc_io import file_fingerprint
from infir.data.documents import Document

log = logging.getLogger(__name__)

DOMAIN = "image_text"
BELOW_THRESHOLD = "image_text_similarity_below_threshold"
SCORE_KEY = "image_text_similarity"
MAX_LOGGED = 3  # per reason and shard


# --- readers ------------------------------------------------------------------------------------


def _caption_from_conversation(record: dict[str, Any]) -> str | None:
    """The first assistant turn of a LLaVA record (its caption), or None."""
    for turn in record.get("conversations") or []:
        if isinstance(turn, dict) and turn.get("from") in ("gpt", "assistant") and isinstance(turn.get("value"), str):
            return turn["value"]
    return None


class ImageTextFileSource:
    """Image-caption pairs from a LLaVA-style JSON list (``{"id", "image", "conversations"}``) or a
    jsonl of ``{"image", "caption"}``. A record without an image or caption becomes a document the
    stage drops with a counted reason (``image_text_bad_record``), never a crash."""

    def __init__(self, path: str, image_root: str | None = None, format: str = "auto", name: str = "image_text") -> None:
        if format not in ("auto", "llava", "jsonl"):
            raise ValueError(f"image-text source format must be auto, llava or jsonl, got {format!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"image-text source: no such file {self.path}")
        self.image_root = str(Path(image_root) if image_root else self.path.parent)
        self.format = format if format != "auto" else ("jsonl" if self.path.suffix in (".jsonl", ".ndjson")
                                                       else "llava")
        self.name = name

    def fingerprint(self) -> str:
        return content_key({"path": str(self.path), "file": file_fingerprint(self.path),
                            "image_root": self.image_root, "format": self.format})

    def _records(self) -> Iterator[tuple[str, Any]]:
        if self.format == "jsonl":
            with self.path.open(encoding="utf-8") as f:
                for lineno, line in enumerate(f, start=1):
                    if line.strip():
                        try:
                            yield f"{self.path}:{lineno}", json.loads(line)
                        except json.JSONDecodeError as err:
                            yield f"{self.path}:{lineno}", f"invalid json ({err})"
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"image-text source {self.path}: a LLaVA file holds a JSON list, got {type(data).__name__}")
        for i, record in enumerate(data):
            yield f"{self.path}[{i}]", record

    def documents(self) -> Iterator[Document]:
        for n, (where, record) in enumerate(self._records()):
            meta: dict[str, Any] = {"image_root": self.image_root, "record": where}
            caption, image = None, None
            if isinstance(record, dict):
                image = record.get("image")
                caption = record.get("caption") if self.format == "jsonl" else _caption_from_conversation(record)
                doc_id = str(record.get("id") or f"{self.name}-{n}")
            else:
                doc_id = f"{self.name}-{n}"
            if not isinstance(image, str) or not image or not isinstance(caption, str) or not caption.strip():
                meta["pair_error"] = (f"record {where} is not an object: {str(record)[:80]}"
                                      if not isinstance(record, dict) else
                                      f"record {where} lacks an image path or caption")
                caption = caption if isinstance(caption, str) else ""
            else:
                meta["image"] = image
            yield Document(doc_id, caption.strip(), self.name, DOMAIN, meta)


class CaptionPairsSource:
    """The embedded default: caption pairs of ``split`` with ``mismatch_rate`` of them given another
    pair's caption (a derangement over different underlying items, so every swapped caption is false).
    Images are written once as PNGs into a content-addressed cache directory."""

    def __init__(self, cache_dir: str, split: str = "test", seed: int = 0, mismatch_rate: float = 0.1,
                 limit: int | None = None, name: str = "caption_pairs") -> None:
        if not 0.0 <= mismatch_rate <= 1.0:
            raise ValueError(f"caption pairs: mismatch_rate must be in [0, 1], got {mismatch_rate}")
        self.cache_dir, self.split, self.seed = cache_dir, split, seed
        self.mismatch_rate, self.limit, self.name = mismatch_rate, limit, name
        self.domain = DOMAIN

    def _pairs(self):
        from infir.vision.captions import caption_pairs

        return caption_pairs(self.split, seed=self.seed, limit=self.limit)

    def fingerprint(self) -> str:
        from infir.vision.clip_scorer import pairs_fingerprint

        return content_key({"pairs": pairs_fingerprint(self._pairs()), "mismatch_rate": self.mismatch_rate,
                            "seed": self.seed})

    def documents(self) -> Iterator[Document]:
        from infir.vision.clip_scorer import derangement, pairs_fingerprint

        pairs = self._pairs()

        def build(tmp: Path) -> dict[str, Any]:
            for p in pairs:
                p.image.save(tmp / f"{p.id}.png")
            return {"images": len(pairs)}

        image_dir = cached_artifact(self.cache_dir, "caption_pair_images", {"pairs": pairs_fingerprint(pairs)}, build)
        rng = random.Random(f"mismatch:{self.seed}")
        chosen = sorted(rng.sample(range(len(pairs)), round(self.mismatch_rate * len(pairs))))
        captions = {i: pairs[i].caption for i in range(len(pairs))}
        sources = {}
        if len(chosen) >= 2:
            perm = derangement([pairs[i].label for i in chosen], rng)
            for k, i in enumerate(chosen):
                sources[i] = chosen[perm[k]]
                captions[i] = pairs[chosen[perm[k]]].caption
        for i, p in enumerate(pairs):
            meta = {"image": str(image_dir / f"{p.id}.png"), "pair_source": p.source, "label": p.label,
                    "pair_split": self.split, "mismatched": i in sources}
            if i in sources:
                meta.update(true_caption=p.caption, caption_from=pairs[sources[i]].id)
            yield Document(p.id, captions[i], self.name, DOMAIN, meta)


# --- the stage ----------------------------------------------------------------------------------


@dataclass
class ImageTextDecision:
    """What the apply pass needs (picklable): the scorer and the resolved threshold."""

    scorer: Any
    threshold: float
    calibration: dict[str, Any]


class ImageTextSimilarityStage:
    """Drop pairs whose image-caption cosine similarity is below ``threshold``: a number (the paper's
    0.5), ``calibrated`` (the ``quantile`` of matched reference pairs of ``reference_split``) or
    ``best_f1`` (the cut with the best F1 between matched and caption-shuffled reference pairs at
    ``expected_mismatch_rate``). The reference split is never the pool being curated.

    ``model_name``/``pretrained`` pick any open_clip model with local weights; without them a tiny
    CLIP (``tiny_clip`` params) is trained on the caption pairs' training split and cached.
    """

    def __init__(self, name: str, cache_dir: str, model_name: str | None = None, pretrained: str | None = None,
                 tiny_clip: dict[str, Any] | None = None, threshold: float | str = "best_f1",
                 quantile: float = 0.01, expected_mismatch_rate: float = 0.1, reference_split: str = "validation",
                 reference_limit: int | None = None,
                 image_root: str | None = None, batch_size: int = 256, torch_threads: int | None = 1,
                 seed: int = 0) -> None:
        from infir.vision.clip_scorer import TinyClipParams, resolve_threshold

        if pretrained and not model_name:
            raise ValueError(f"curation stage {name}: pretrained={pretrained!r} needs a model_name")
        import numpy as np

        resolve_threshold(np.ones(2), threshold, quantile, np.zeros(2), expected_mismatch_rate)  # one-line error early
        self.name = name
        self.cache_dir = cache_dir
        self.model_name, self.pretrained = model_name, pretrained
        self.tiny_clip = TinyClipParams.from_config(tiny_clip)
        self.threshold, self.quantile = threshold, float(quantile)
        self.expected_mismatch_rate = float(expected_mismatch_rate)
        self.reference_split, self.reference_limit = reference_split, reference_limit
        self.image_root = image_root
        self.batch_size, self.torch_threads, self.seed = batch_size, torch_threads, seed

    def scorer(self):
        """The configured open_clip scorer; trains (or reuses) the tiny CLIP when no model is named."""
        from infir.vision.clip_scorer import LOCAL_DIR, ClipScorer, train_tiny_clip

        model_name = self.model_name
        if model_name is None:
            model_name = LOCAL_DIR + str(train_tiny_clip(self.tiny_clip, self.cache_dir))
        return ClipScorer(model_name, self.pretrained, self.batch_size, self.torch_threads)

    # -- global stage protocol ------------------------------------------------------------------

    def summarise(self, docs: list[Document]) -> int:
        """Nothing per shard: the model and threshold come from reference data, not the pool."""
        return len(docs)

    def decide(self, summaries: Sequence[int]) -> ImageTextDecision:
        from infir.vision.captions import caption_pairs
        from infir.vision.clip_scorer import calibrate, pairs_fingerprint

        scorer = self.scorer()
        reference = caption_pairs(self.reference_split, seed=self.seed, limit=self.reference_limit)
        spec = {"model": scorer.identity, "reference": pairs_fingerprint(reference), "threshold": self.threshold,
                "quantile": self.quantile, "expected_mismatch_rate": self.expected_mismatch_rate, "seed": self.seed}

        def build(tmp: Path) -> dict[str, Any]:
            calibration = asdict(calibrate(scorer, reference, self.threshold, self.quantile, tmp, self.seed,
                                           self.expected_mismatch_rate))
            return {k: v for k, v in calibration.items() if not k.endswith("_path")}  # tmp paths: renamed

        artifact = cached_artifact(self.cache_dir, "image_text_calibration", spec, build)
        stats = json.loads((artifact / "calibration.json").read_text())
        stats.update(stats_path=str(artifact / "calibration.json"),
                     histogram_path=str(artifact / "similarity_histogram.png"))
        log.info("image-text %s: threshold %.4f (%s); matched reference pairs: mean %.3f, peak %.3f, %.1f%% below; "
                 "shuffled: %.1f%% below; AUC %.3f; stats %s", self.name, stats["threshold"], stats["threshold_rule"],
                 stats["matched_mean"], stats["matched_peak"], 100 * stats["fraction_below"],
                 100 * stats["mismatched_fraction_below"], stats["auc"], stats["stats_path"])
        return ImageTextDecision(scorer, float(stats["threshold"]), stats)

    def _image_path(self, doc: Document) -> Path:
        path = Path(doc.metadata["image"])
        root = doc.metadata.get("image_root") or self.image_root
        return path if path.is_absolute() or not root else Path(root) / path

    def apply(self, docs: list[Document], decision: ImageTextDecision) -> StageOutput:
        output = StageOutput()
        logged: Counter = Counter()
        ready: list[tuple[Document, Image.Image]] = []
        reasons: dict[int, str] = {}

        def reject(i: int, doc: Document, reason: str, detail: str) -> None:
            reasons[i] = reason
            logged[reason] += 1
            if logged[reason] <= MAX_LOGGED:
                log.warning("%s: %s (document %s): %s", self.name, reason, doc.id, detail)

        order: list[int] = []
        for i, doc in enumerate(docs):
            if "pair_error" in doc.metadata:
                reject(i, doc, "image_text_bad_record", doc.metadata["pair_error"])
                continue
            if not isinstance(doc.metadata.get("image"), str):
                reject(i, doc, "image_text_no_image_field", "metadata has no 'image' path")
                continue
            if not doc.text.strip():
                reject(i, doc, "image_text_empty_caption", "empty caption")
                continue
            path = self._image_path(doc)
            try:
                with Image.open(path) as im:
                    image = im.convert("RGB")  # decodes now: a truncated file fails here, not in the model
            except FileNotFoundError:
                reject(i, doc, "image_text_missing_image", str(path))
                continue
            except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as err:
                reject(i, doc, "image_text_unreadable_image", f"{path}: {err}")
                continue
            ready.append((doc, image))
            order.append(i)
        scores = decision.scorer.similarities([im for _, im in ready], [d.text for d, _ in ready])
        for i, (doc, _), score in zip(order, ready, scores):
            doc.metadata[SCORE_KEY] = round(float(score), 4)
            if score < decision.threshold:
                reasons[i] = BELOW_THRESHOLD
        for i, doc in enumerate(docs):
            output.add(doc, reasons.get(i))
        return output
