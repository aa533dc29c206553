"""Image-caption similarity with an open_clip model, and its calibration (PAPER.md §5).

The paper scores pairs with a visualised-BGE model and drops those below 0.5, a threshold it
calibrated on 2,500 COCO pairs (peak ~0.7, < 5 % below 0.5). Offline there is no pretrained
CLIP, so the default here trains a tiny open_clip model (open_clip's ModifiedResNet at 32 px, whose
convolutions learn 8x8 digit shapes in a few hundred steps where a from-scratch ViT did not, and a
one-layer text transformer) on the matched training pairs of ``infir.vision.captions`` with
open_clip's contrastive loss, and caches
it as a content-addressed artifact in open_clip's own ``local-dir:`` layout (config + safetensors),
so ``open_clip.create_model("local-dir:<artifact>")`` loads it like any other checkpoint. A tiny
model's cosine scale is not BGE's, so the threshold can be ``calibrated``: the q-quantile of the
similarities of matched reference pairs (q = 0.05 mirrors "< 5 % below"), or ``best_f1``: the cut
between matched and caption-shuffled reference pairs with the best F1 at an expected mismatch rate
(uses both tails, so one odd matched pair does not move it the way it moves a 1 % quantile).

Import ``infir`` before this module (open_clip imports torchvision; infir guards it on CPU wheels).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import infir  # noqa: F401  (torchvision op guard, before open_clip)
from infir.atomic_files import atomic_write_text
from infir.data.cache import cached_artifact, content_key
from infir.vision.captions import CaptionedImage, caption_pairs

log = logging.getLogger(__name__)

LOCAL_DIR = "local-dir:"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
CALIBRATED = "calibrated"
BEST_F1 = "best_f1"
THRESHOLD_RULES = (CALIBRATED, BEST_F1)


@dataclass(frozen=True)
class TinyClipParams:
    """A CPU-sized open_clip model and its training run (about a minute on one busy core by default).

    Vision: open_clip's ModifiedResNet (``resnet_layers`` blocks, stem ``vision_width``) or a ViT
    (``patch_size`` patches, ``vision_width`` x ``vision_layers``), at ``image_size`` px; text:
    open_clip's BPE tokenizer, ``context_length`` tokens, ``text_width`` x ``text_layers``.
    Training is deterministic for a given thread count: fixed seed, fixed epochs (no time budget).
    """

    embed_dim: int = 64
    image_size: int = 32
    vision_arch: str = "resnet"  # or "vit"
    resnet_layers: tuple[int, ...] = (1, 1, 1, 1)  # open_clip's ModifiedResNet: blocks per stage
    patch_size: int = 4  # vit only
    vision_width: int = 8
    vision_layers: int = 2  # vit only
    vision_head_width: int = 32
    context_length: int = 16  # captions are short; longer ones are truncated
    text_width: int = 32
    text_layers: int = 1
    text_heads: int = 2
    epochs: int = 35  # picked on validation F1 (25: 0.82, 35: 0.85, 50: 0.84)
    batch_size: int = 256  # more negatives per step, and ~1.5x cheaper per pair than 128 on one thread
    lr: float = 5e-3
    weight_decay: float = 0.1
    warmup_steps: int = 10
    seed: int = 0
    torch_threads: int = 1  # measured: 1 thread is ~4x faster than 2 on a busy 2-core box
    train_split: str = "train"
    train_limit: int | None = None  # the first n training pairs (tests, quick runs)
    data_seed: int = 0

    @classmethod
    def from_config(cls, params: TinyClipParams | dict[str, Any] | None) -> TinyClipParams:
        if params is None or isinstance(params, TinyClipParams):
            return params or cls()
        unknown = set(params) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"tiny_clip params: unknown keys {sorted(unknown)} "
                             f"(known: {sorted(cls.__dataclass_fields__)})")
        params = dict(params)
        if "resnet_layers" in params:
            params["resnet_layers"] = tuple(int(n) for n in params["resnet_layers"])
        if params.get("vision_arch", "resnet") not in ("resnet", "vit"):
            raise ValueError(f"tiny_clip params: vision_arch must be 'resnet' or 'vit', got {params['vision_arch']!r}")
        return cls(**params)

    def model_cfg(self) -> dict[str, Any]:
        """open_clip's model config (the ``model_cfg`` of an ``open_clip_config.json``)."""
        vision: dict[str, Any] = {"image_size": self.image_size, "width": self.vision_width,
                                  "head_width": self.vision_head_width}
        if self.vision_arch == "resnet":  # open_clip builds a ModifiedResNet when ``layers`` is a list
            vision["layers"] = list(self.resnet_layers)
        else:
            vision.update(layers=self.vision_layers, patch_size=self.patch_size)
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": vision,
            "text_cfg": {"context_length": self.context_length, "vocab_size": 49408, "width": self.text_width,
                         "heads": self.text_heads, "layers": self.text_layers},
        }


@functools.cache
def _code_fingerprint() -> str:
    """This module's source: a changed training loop must not reuse a stale model."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def pairs_fingerprint(pairs: Sequence[CaptionedImage]) -> str:
    """Hash of the exact pixels and captions (the cache key's input fingerprint)."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(f"{p.id}\0{p.caption}\0{p.image.size}\0".encode())
        h.update(p.image.tobytes())
    return h.hexdigest()[:20]


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_tiny_clip(params: TinyClipParams, cache_dir: str | Path) -> Path:
    """Train (or reuse) the tiny CLIP on the matched pairs of ``params.train_split``; returns the
    artifact directory, loadable as ``open_clip.create_model("local-dir:" + str(path))``."""
    pairs = caption_pairs(params.train_split, seed=params.data_seed, limit=params.train_limit)
    if len(pairs) < 2:
        raise ValueError(f"tiny_clip: need at least 2 training pairs, got {len(pairs)} "
                         f"(train_split={params.train_split!r}, train_limit={params.train_limit})")
    spec = {"params": asdict(params), "data": pairs_fingerprint(pairs), "code": _code_fingerprint()}

    def build(tmp: Path) -> dict[str, Any]:
        return _train(params, pairs, tmp)

    artifact = cached_artifact(cache_dir, "tiny_clip", spec, build)
    log.info("tiny CLIP %s (%d training pairs)", artifact, len(pairs))
    return artifact


def _train(params: TinyClipParams, pairs: Sequence[CaptionedImage], out: Path) -> dict[str, Any]:
    import open_clip
    import torch
    from safetensors.torch import save_file

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(params.torch_threads)
    try:
        _seed_everything(params.seed)
        cfg = params.model_cfg()
        model = open_clip.CLIP(**cfg)
        preprocess = open_clip.image_transform(params.image_size, is_train=False)
        tokenizer = open_clip.SimpleTokenizer(context_length=params.context_length)
        images = torch.stack([preprocess(p.image) for p in pairs])
        texts = tokenizer([p.caption for p in pairs])
        loss_fn = open_clip.ClipLoss()
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
        no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": params.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=params.lr,
                                      fused=True)  # the 3.2M-row BPE embedding: unfused AdamW is ~40 % of a step
        steps_per_epoch = max(1, len(pairs) // params.batch_size)  # full batches: ClipLoss wants negatives
        total = steps_per_epoch * params.epochs

        def lr_at(step: int) -> float:  # linear warmup, cosine decay
            if step < params.warmup_steps:
                return (step + 1) / params.warmup_steps
            progress = (step - params.warmup_steps) / max(1, total - params.warmup_steps)
            return 0.5 * (1 + np.cos(np.pi * min(1.0, progress)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
        generator = torch.Generator().manual_seed(params.seed)
        batch = min(params.batch_size, len(pairs))
        started = time.perf_counter()
        model.train()
        losses = []
        for _ in range(params.epochs):
            order = torch.randperm(len(pairs), generator=generator)
            for s in range(steps_per_epoch):
                idx = order[s * batch:(s + 1) * batch]
                image_features, text_features, logit_scale = model(images[idx], texts[idx])[:3]
                loss = loss_fn(image_features, text_features, logit_scale)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                with torch.no_grad():
                    model.logit_scale.clamp_(0, np.log(100))
                losses.append(loss.item())
        seconds = time.perf_counter() - started
        model.eval()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS_FILE))
        mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
        (out / CONFIG_FILE).write_text(json.dumps({
            "model_cfg": cfg, "preprocess_cfg": {"size": params.image_size, "mean": list(mean), "std": list(std)}},
            indent=2))
        log.info("trained tiny CLIP: %d pairs, %d steps in %.1fs, loss %.3f -> %.3f", len(pairs), total, seconds,
                 losses[0], float(np.mean(losses[-steps_per_epoch:])))
        return {"train_pairs": len(pairs), "steps": total, "train_seconds": round(seconds, 2),
                "first_loss": round(losses[0], 4), "final_loss": round(float(np.mean(losses[-steps_per_epoch:])), 4)}
    finally:
        torch.set_num_threads(previous_threads)


class ClipScorer:
    """Cosine similarity of image and caption embeddings under an open_clip model.

    ``model_name`` is any open_clip model name (``ViT-B-32``) with ``pretrained`` a local checkpoint
    path, or ``local-dir:<dir>`` (a trained tiny model). Picklable: worker processes reload the
    model lazily; nothing is downloaded (a ``pretrained`` tag that would need the hub is refused).
    """

    def __init__(self, model_name: str, pretrained: str | None = None, batch_size: int = 256,
                 torch_threads: int | None = None) -> None:
        if pretrained is not None and not Path(pretrained).is_file():
            raise FileNotFoundError(f"clip scorer: pretrained={pretrained!r} is not a local checkpoint file "
                                    "(offline: pass a path, or model_name='local-dir:<dir>')")
        if model_name.startswith(LOCAL_DIR) and not (Path(model_name[len(LOCAL_DIR):]) / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"clip scorer: {model_name} has no {CONFIG_FILE}")
        self.model_name = model_name
        self.pretrained = pretrained
        self.batch_size = batch_size
        self.torch_threads = torch_threads
        self._loaded: tuple[Any, Any, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loaded": None}

    @property
    def identity(self) -> dict[str, Any]:
        """What the scores depend on (for cache keys): the model and its weights' fingerprint."""
        weights = self.pretrained or (self.model_name[len(LOCAL_DIR):] if self.model_name.startswith(LOCAL_DIR)
                                      else None)
        return {"model_name": self.model_name, "pretrained": self.pretrained,
                "weights": _path_fingerprint(Path(weights)) if weights else None}

    def _load(self) -> tuple[Any, Any, Any]:
        if self._loaded is None:
            import open_clip

            model, _, preprocess = open_clip.create_model_and_transforms(self.model_name, pretrained=self.pretrained)
            model.eval()
            self._loaded = (model, preprocess, open_clip.get_tokenizer(self.model_name))
        return self._loaded

    def _threads(self):
        import torch

        class _Threads:
            def __enter__(inner):
                inner.previous = torch.get_num_threads()
                if self.torch_threads:
                    torch.set_num_threads(self.torch_threads)

            def __exit__(inner, *exc):
                torch.set_num_threads(inner.previous)

        return _Threads()

    def embed_images(self, images: Sequence[Any]) -> np.ndarray:
        """L2-normalised image embeddings ``[n, embed_dim]`` (PIL images, any mode)."""
        import torch

        model, preprocess, _ = self._load()
        out = []
        with torch.no_grad(), self._threads():
            for start in range(0, len(images), self.batch_size):
                batch = torch.stack([preprocess(im.convert("RGB")) for im in images[start:start + self.batch_size]])
                out.append(torch.nn.functional.normalize(model.encode_image(batch), dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised caption embeddings ``[n, embed_dim]``."""
        import torch

        model, _, tokenizer = self._load()
        out = []
        with torch.no_grad(), self._threads():
            for start in range(0, len(texts), self.batch_size):
                tokens = tokenizer(list(texts[start:start + self.batch_size]))
                out.append(torch.nn.functional.normalize(model.encode_text(tokens), dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def similarities(self, images: Sequence[Any], captions: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each image with its own caption, ``[n]``."""
        if len(images) != len(captions):
            raise ValueError(f"clip scorer: {len(images)} images but {len(captions)} captions")
        if not images:
            return np.zeros(0, dtype=np.float64)
        return np.sum(self.embed_images(images) * self.embed_texts(captions), axis=1).astype(np.float64)


def _path_fingerprint(path: Path) -> str:
    """Size and mtime of a checkpoint file, or of each file of a model directory."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return content_key([[str(p.relative_to(path)) if path.is_dir() else p.name, p.stat().st_size,
                         p.stat().st_mtime_ns] for p in files])


def derangement(labels: Sequence[str], rng: random.Random, attempts: int = 1000) -> list[int]:
    """A permutation ``perm`` with ``labels[perm[i]] != labels[i]`` for every i: caption ``perm[i]``
    is false of image ``i`` (two pairs of one underlying item would swap into a true caption)."""
    n = len(labels)
    if n < 2 or len(set(labels)) < 2:
        raise ValueError(f"derangement: need at least two distinct labels, got {sorted(set(labels))}")
    for _ in range(attempts):
        perm = list(range(n))
        rng.shuffle(perm)
        bad = [i for i in range(n) if labels[perm[i]] == labels[i]]
        for i in bad:  # repair by swapping with a position where both end up false
            if labels[perm[i]] != labels[i]:
                continue
            for j in rng.sample(range(n), n):
                if labels[perm[j]] != labels[i] and labels[perm[i]] != labels[j]:
                    perm[i], perm[j] = perm[j], perm[i]
                    break
        if all(labels[perm[i]] != labels[i] for i in range(n)):
            return perm
    raise ValueError("derangement: no permutation found with every caption false of its image")


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half (Mann-Whitney)."""
    from sklearn.metrics import roc_auc_score

    y = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    return float(roc_auc_score(y, np.concatenate([positive, negative])))


@dataclass
class Calibration:
    """Similarities of matched (and, for reference, mismatched) pairs and the threshold they give."""

    threshold: float
    threshold_rule: str
    matched_mean: float
    matched_peak: float
    fraction_below: float
    mismatched_mean: float
    mismatched_fraction_below: float
    auc: float
    n_pairs: int
    stats_path: str
    histogram_path: str


def best_f1_threshold(matched: np.ndarray, mismatched: np.ndarray, mismatch_rate: float) -> float:
    """The cut that maximises the F1 of dropping mismatches when ``mismatch_rate`` of pairs are false:
    recall is the share of ``mismatched`` below it, false drops the share of ``matched`` below it
    (precision weighs the two by the rate). Cuts lie midway between neighbouring scores."""
    values = np.unique(np.concatenate([matched, mismatched]))
    if len(values) < 2:
        raise ValueError("image-text calibration: all reference similarities are equal; no threshold separates them")
    cuts = (values[:-1] + values[1:]) / 2
    recall = (mismatched[None, :] < cuts[:, None]).mean(axis=1)
    false_drops = (matched[None, :] < cuts[:, None]).mean(axis=1)
    caught = mismatch_rate * recall
    precision = np.divide(caught, caught + (1 - mismatch_rate) * false_drops, out=np.zeros_like(caught),
                          where=caught > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(caught),
                   where=precision + recall > 0)
    return float(cuts[int(np.argmax(f1))])


def resolve_threshold(matched: np.ndarray, threshold: float | str, quantile: float,
                      mismatched: np.ndarray | None = None, mismatch_rate: float = 0.1) -> tuple[float, str]:
    """A number is used as it is (the paper: 0.5); ``calibrated`` is the ``quantile`` of matched pairs;
    ``best_f1`` the cut between matched and caption-shuffled reference pairs with the best F1 at
    ``mismatch_rate`` (see ``best_f1_threshold``)."""
    if isinstance(threshold, str):
        if threshold not in THRESHOLD_RULES:
            raise ValueError(f"image-text threshold must be a number or one of {THRESHOLD_RULES}, got {threshold!r}")
        if threshold == BEST_F1:
            if not 0.0 < mismatch_rate < 1.0:
                raise ValueError(f"image-text expected_mismatch_rate must be in (0, 1), got {mismatch_rate}")
            if mismatched is None:
                raise ValueError("image-text threshold best_f1 needs the shuffled-caption similarities")
            return (best_f1_threshold(matched, mismatched, mismatch_rate),
                    f"{BEST_F1}: max F1 at mismatch rate {mismatch_rate} on reference pairs")
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"image-text quantile must be in (0, 1), got {quantile}")
        return float(np.quantile(matched, quantile)), f"{CALIBRATED}: q={quantile} of matched reference pairs"
    return float(threshold), "fixed"


def _histogram_peak(values: np.ndarray, bins: np.ndarray) -> float:
    counts, edges = np.histogram(values, bins=bins)
    k = int(np.argmax(counts))
    return float((edges[k] + edges[k + 1]) / 2)


def calibrate(scorer: ClipScorer, reference: Sequence[CaptionedImage], threshold: float | str, quantile: float,
              out_dir: str | Path, seed: int = 0, mismatch_rate: float = 0.1) -> Calibration:
    """Score matched reference pairs and a caption-shuffled copy; write ``calibration.json`` and
    ``similarity_histogram.png`` into ``out_dir``; return the resolved threshold and the stats."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(reference) < 2:
        raise ValueError(f"image-text calibration: need at least 2 reference pairs, got {len(reference)}")
    images, captions = [p.image for p in reference], [p.caption for p in reference]
    matched = scorer.similarities(images, captions)
    perm = derangement([p.label for p in reference], random.Random(seed))
    mismatched = scorer.similarities(images, [captions[j] for j in perm])
    value, rule = resolve_threshold(matched, threshold, quantile, mismatched, mismatch_rate)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bins = np.linspace(-1.0, 1.0, 81)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(matched, bins=bins, alpha=0.7, label=f"matched (n={len(matched)})")
    ax.hist(mismatched, bins=bins, alpha=0.5, label="shuffled captions")
    ax.axvline(value, color="k", linestyle="--", label=f"threshold {value:.3f}")
    ax.set_xlabel("cosine similarity (image, caption)")
    ax.set_ylabel("pairs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    histogram = out / "similarity_histogram.png"
    fig.savefig(histogram, dpi=100)
    plt.close(fig)
    calibration = Calibration(
        threshold=round(value, 6), threshold_rule=rule, matched_mean=round(float(matched.mean()), 4),
        matched_peak=round(_histogram_peak(matched, bins), 4),
        fraction_below=round(float(np.mean(matched < value)), 4),
        mismatched_mean=round(float(mismatched.mean()), 4),
        mismatched_fraction_below=round(float(np.mean(mismatched < value)), 4),
        auc=round(roc_auc(matched, mismatched), 4), n_pairs=len(reference),
        stats_path=str(out / "calibration.json"), histogram_path=str(histogram))
    stats = {**asdict(calibration), "stats_path": "calibration.json", "histogram_path": histogram.name,  # relative
             "model": scorer.identity,
             "histogram": {"edges": bins.round(3).tolist(), "matched": np.histogram(matched, bins)[0].tolist(),
                           "mismatched": np.histogram(mismatched, bins)[0].tolist()}}
    atomic_write_text(out / "calibration.json", json.dumps(stats, indent=2, default=str))
    return calibration
