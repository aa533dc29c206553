"""Vision towers by name: timm (ViT / SigLIP families, or conv nets' feature maps) or an open_clip visual
tower, random or local weights.

A tower maps ``(N, 3, S, S)`` pixels to ``(N, T, D)`` features. A ViT gives patch tokens: prefix tokens
(class token, registers) are dropped and SigLIP's attention-pooling head is never built, because the
language model reads patch tokens, not a pooled vector. A conv net (ResNet, ConvNeXt, ... : any timm model
without a patch embedding) gives its ``(N, C, H, W)`` feature map of the chosen stage, read row by row as
``H x W`` tokens (as ConvNeXt/FastViT-tower VLMs do). Why conv nets too: a random-init ViT learns nothing
from a few thousand images in CPU minutes, a BatchNorm ResNet does (README, Multimodal), so the embedded
default trains one. A frozen tower stays in eval mode, so its BatchNorm statistics are frozen with its
weights. Nothing is downloaded: ``checkpoint`` is a local file or null (random init).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import infir  # noqa: F401  (torchvision op guard before timm/open_clip import torchvision)

log = logging.getLogger(__name__)

TOWER_KINDS = ("timm", "open_clip")


@dataclass(frozen=True)
class TowerSpec:
    """``modality.vision_tower``: which tower, its constructor arguments and weights."""

    kind: str = "timm"
    name: str = "vit_so400m_patch14_siglip_384"
    checkpoint: str | None = None
    model_args: Mapping[str, Any] = field(default_factory=dict)
    feature_layer: int = -1  # -1: the final (normed) features; k >= 0: ViT block k's output, un-normed / stage k's map
    image_size: int | None = None  # conv nets: the input side (null: the model's pretrained input size)

    @classmethod
    def from_config(cls, node: Mapping[str, Any]) -> TowerSpec:
        size = node.get("image_size")
        spec = cls(kind=str(node.get("kind", "timm")), name=str(node["name"]), checkpoint=node.get("checkpoint"),
                   model_args=dict(node.get("model_args") or {}), feature_layer=int(node.get("feature_layer", -1)),
                   image_size=None if size is None else int(size))
        if spec.kind not in TOWER_KINDS:
            raise ValueError(f"modality.vision_tower.kind={spec.kind!r}: choose one of {TOWER_KINDS}")
        if spec.checkpoint and not Path(spec.checkpoint).expanduser().is_file():
            raise FileNotFoundError(f"modality.vision_tower.checkpoint: no file at {spec.checkpoint}")
        return spec

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "checkpoint": self.checkpoint,
                "model_args": dict(self.model_args), "feature_layer": self.feature_layer, "image_size": self.image_size}


class VisionTower(nn.Module):
    """Patch features from a timm or open_clip image model; ``image_size``, ``grid`` and ``hidden_size`` describe them."""

    def __init__(self, spec: TowerSpec) -> None:
        super().__init__()
        self.spec = spec
        if spec.kind == "timm":
            self.model, self.image_size, self.grid, self.hidden_size = _timm_tower(spec)
        else:
            self.model, self.image_size, self.grid, self.hidden_size = _open_clip_tower(spec)
        self.is_conv_net = spec.kind == "timm" and not hasattr(self.model, "patch_embed")
        self.num_patches = self.grid[0] * self.grid[1]

    @property
    def trains(self) -> bool:
        """Whether any tower weight is trainable in this phase."""
        return any(p.requires_grad for p in self.parameters())

    def train(self, mode: bool = True) -> VisionTower:
        """Train mode only while some weight trains: a frozen tower's BatchNorm statistics stay frozen too."""
        return super().train(mode and self.trains)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.spec.kind == "open_clip":
            _, tokens = self.model(pixel_values)
            return tokens
        if self.is_conv_net:
            return _feature_map(self.model, pixel_values, self.spec.feature_layer).flatten(2).transpose(1, 2)
        if self.spec.feature_layer < 0:
            features = self.model.forward_features(pixel_values)
            return features[:, self.model.num_prefix_tokens:]
        (features,) = self.model.forward_intermediates(pixel_values, indices=[self.spec.feature_layer],
                                                       output_fmt="NLC", norm=False, intermediates_only=True)
        return features


def _timm_tower(spec: TowerSpec) -> tuple[nn.Module, int, tuple[int, int], int]:
    import timm

    args = {"num_classes": 0, "global_pool": "", **spec.model_args}
    if spec.checkpoint:
        args.update(pretrained=True, pretrained_cfg_overlay={"file": str(Path(spec.checkpoint).expanduser())})
    try:
        model = timm.create_model(spec.name, **args)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"modality.vision_tower: timm cannot build {spec.name!r} with {dict(spec.model_args)}: {err}") \
            from err
    patch = getattr(model, "patch_embed", None)
    if patch is None:
        return _conv_tower(model, spec)
    if spec.image_size is not None and spec.image_size != int(patch.img_size[0]):
        raise ValueError(f"modality.vision_tower.image_size={spec.image_size}: a ViT's input side is "
                         f"model_args.img_size ({int(patch.img_size[0])} for {spec.name!r}); set that instead")
    if spec.feature_layer >= len(getattr(model, "blocks", [])):
        raise ValueError(f"modality.vision_tower.feature_layer={spec.feature_layer}: the tower has "
                         f"{len(model.blocks)} blocks")
    size = patch.img_size
    return model, int(size[0]), tuple(int(g) for g in patch.grid_size), int(model.embed_dim)


def _feature_map(model: nn.Module, pixels: torch.Tensor, layer: int) -> torch.Tensor:
    if layer < 0:
        return model.forward_features(pixels)
    (features,) = model.forward_intermediates(pixels, indices=[layer], intermediates_only=True)
    return features


def _conv_tower(model: nn.Module, spec: TowerSpec) -> tuple[nn.Module, int, tuple[int, int], int]:
    """A timm conv net: its input side and the (H, W, C) of the chosen stage's map, from one dummy forward."""
    stages = len(getattr(model, "feature_info", []) or [])
    if not hasattr(model, "forward_intermediates") or spec.feature_layer >= stages:
        raise ValueError(f"modality.vision_tower: {spec.name!r} has {stages} feature stages; feature_layer="
                         f"{spec.feature_layer} (use -1 for the last, or a stage index)")
    size = spec.image_size or int((getattr(model, "pretrained_cfg", {}) or {}).get("input_size", (3, 224, 224))[-1])
    was_training = model.training
    with torch.no_grad():
        features = _feature_map(model.eval(), torch.zeros(1, 3, size, size), spec.feature_layer)
    model.train(was_training)
    if features.ndim != 4:
        raise ValueError(f"modality.vision_tower.name={spec.name!r}: expected an (N, C, H, W) feature map, got "
                         f"shape {tuple(features.shape)}")
    return model, size, (int(features.shape[2]), int(features.shape[3])), int(features.shape[1])


def _open_clip_tower(spec: TowerSpec) -> tuple[nn.Module, int, tuple[int, int], int]:
    import open_clip

    try:
        clip = open_clip.create_model(spec.name, pretrained=str(Path(spec.checkpoint).expanduser())
                                      if spec.checkpoint else None, **spec.model_args)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"modality.vision_tower: open_clip cannot build {spec.name!r}: {err}") from err
    visual = clip.visual
    if not hasattr(visual, "output_tokens"):
        raise ValueError(f"modality.vision_tower.name={spec.name!r}: its visual tower has no patch tokens")
    visual.output_tokens = True
    size = visual.image_size if isinstance(visual.image_size, int) else visual.image_size[0]
    with torch.no_grad():
        _, tokens = visual(torch.zeros(1, 3, size, size))
    side = int(round(tokens.shape[1] ** 0.5))
    return visual, int(size), (side, tokens.shape[1] // side), int(tokens.shape[-1])


def tower_normalisation(tower: VisionTower) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) the tower's family was trained with (timm's pretrained config, open_clip's preprocess)."""
    model = tower.model
    if tower.spec.kind == "timm":
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        return tuple(cfg.get("mean", (0.5, 0.5, 0.5))), tuple(cfg.get("std", (0.5, 0.5, 0.5)))
    cfg = getattr(model, "preprocess_cfg", {}) or {}
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    return tuple(cfg.get("mean", OPENAI_DATASET_MEAN)), tuple(cfg.get("std", OPENAI_DATASET_STD))
