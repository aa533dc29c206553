"""Projector from vision features to the LM's embedding space, with optional pixel shuffle.

``mlp2x_gelu`` is LLaVA-1.5's projector (Linear -> GELU -> Linear; the paper says "MLP projector",
depth [unknown]); ``linear`` is LLaVA-1's. Pixel shuffle (space-to-depth, as nanoVLM and Idefics3 do)
merges each ``f x f`` block of neighbouring patches into one token with ``f^2`` times the channels,
cutting the visual tokens by ``f^2`` (SigLIP-So400m/384: 27 x 27 = 729 -> 9 x 9 = 81 at f = 3) before
the projector, so the LM's sequence stays short.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

PROJECTOR_KINDS = ("linear", "mlp2x_gelu")


def pixel_shuffle(features: torch.Tensor, grid: tuple[int, int], factor: int) -> torch.Tensor:
    """``(N, h*w, D)`` -> ``(N, h*w/f^2, D*f^2)``; each output token holds one ``f x f`` block, row-major."""
    if factor == 1:
        return features
    n, tokens, dim = features.shape
    h, w = grid
    if h * w != tokens or h % factor or w % factor:
        raise ValueError(f"pixel shuffle factor {factor} needs a patch grid divisible by it; got {h}x{w} "
                         f"({tokens} tokens)")
    x = features.view(n, h // factor, factor, w // factor, factor, dim)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(n, (h // factor) * (w // factor), factor * factor * dim)


class Projector(nn.Module):
    """Vision features ``(N, T, D)`` -> LM embeddings ``(N, T / f^2, H)``."""

    def __init__(self, kind: str, vision_size: int, text_size: int, grid: tuple[int, int],
                 pixel_shuffle_factor: int = 1) -> None:
        super().__init__()
        if kind not in PROJECTOR_KINDS:
            raise ValueError(f"modality.projector.kind={kind!r}: choose one of {PROJECTOR_KINDS}")
        factor = int(pixel_shuffle_factor)
        if factor < 1 or grid[0] % factor or grid[1] % factor:
            raise ValueError(f"modality.projector.pixel_shuffle={factor} must divide the tower's patch grid "
                             f"{grid[0]}x{grid[1]}")
        self.kind, self.grid, self.factor = kind, grid, factor
        in_size = vision_size * factor * factor
        self.linear_1 = nn.Linear(in_size, text_size)
        if kind == "mlp2x_gelu":
            self.act = nn.GELU()
            self.linear_2 = nn.Linear(text_size, text_size)
        self.tokens_per_image = (grid[0] // factor) * (grid[1] // factor)

    @classmethod
    def from_config(cls, node: Mapping[str, Any], vision_size: int, text_size: int,
                    grid: tuple[int, int]) -> Projector:
        return cls(str(node.get("kind", "mlp2x_gelu")), vision_size, text_size, grid,
                   int(node.get("pixel_shuffle", 1)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.linear_1(pixel_shuffle(features, self.grid, self.factor))
        if self.kind == "mlp2x_gelu":
            x = self.linear_2(self.act(x))
        return x
