"""Images of any size -> the tower's input: resize, pad (letterbox) or tile, then normalise.

The input side and the normalisation come from the tower itself (timm's pretrained config, open_clip's
preprocess config), so a checkpoint is always fed the statistics it was trained with. Policies:
``resize`` squashes to ``S x S``; ``pad`` letterboxes to a square with the mean colour first (LLaVA-1.5's
"pad", keeps the aspect ratio); ``tile`` cuts the image into the grid of at most ``max_tiles`` ``S x S``
tiles whose aspect ratio fits best, plus one padded thumbnail of the whole image (LLaVA-NeXT's "anyres"
idea), so small text survives at high resolution. Every tile is one tower image: a sample's placeholder
count is ``tiles x tokens_per_image``, which :func:`ImageProcessor.num_images` tells the text side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

POLICIES = ("resize", "pad", "tile")
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
             "nearest": Image.Resampling.NEAREST}


@dataclass(frozen=True)
class ImageProcessor:
    """What an export's ``preprocessor_config.json`` holds; ``__call__`` gives ``(tiles, 3, size, size)``."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    policy: str = "pad"
    max_tiles: int = 4
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"modality.image.policy={self.policy!r}: choose one of {POLICIES}")
        if self.interpolation not in _RESAMPLE:
            raise ValueError(f"modality.image.interpolation={self.interpolation!r}: choose one of {sorted(_RESAMPLE)}")
        if self.size < 1 or self.max_tiles < 1:
            raise ValueError(f"image size and max_tiles must be >= 1, got {self.size}, {self.max_tiles}")

    @classmethod
    def from_config(cls, node: Mapping[str, Any], size: int, mean: Sequence[float], std: Sequence[float]) -> ImageProcessor:
        return cls(size=int(node.get("size") or size), mean=tuple(float(m) for m in node.get("mean") or mean),
                   std=tuple(float(s) for s in node.get("std") or std), policy=str(node.get("policy", "pad")),
                   max_tiles=int(node.get("max_tiles", 4)), interpolation=str(node.get("interpolation", "bicubic")))

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std), "policy": self.policy,
                "max_tiles": self.max_tiles, "interpolation": self.interpolation}

    def tile_grid(self, width: int, height: int) -> tuple[int, int]:
        """(columns, rows) of the tile policy, by LLaVA-NeXT's rule: of the grids with at most ``max_tiles``
        tiles, the one that keeps the most of the image's pixels once it is scaled to fit, then the one that
        wastes the least canvas."""
        best, best_score = (1, 1), None
        for cols in range(1, self.max_tiles + 1):
            for rows in range(1, self.max_tiles // cols + 1):
                scale = min(cols * self.size / width, rows * self.size / height)
                effective = min(width * scale * height * scale, width * height)
                score = (-effective, cols * rows * self.size * self.size - effective)
                if best_score is None or score < best_score:
                    best, best_score = (cols, rows), score
        return best

    def num_images(self, width: int, height: int) -> int:
        """Tower images (tiles) this processor makes of a ``width x height`` image."""
        if self.policy != "tile":
            return 1
        cols, rows = self.tile_grid(width, height)
        return 1 if cols * rows == 1 else cols * rows + 1

    def _square(self, image: Image.Image) -> Image.Image:
        if self.policy == "resize":
            return image.resize((self.size, self.size), _RESAMPLE[self.interpolation])
        side = max(image.size)
        fill = tuple(int(round(m * 255)) for m in self.mean)
        canvas = Image.new("RGB", (side, side), fill)
        canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        return canvas.resize((self.size, self.size), _RESAMPLE[self.interpolation])

    def _tensor(self, image: Image.Image) -> torch.Tensor:
        array = np.asarray(image, dtype=np.float32) / 255.0
        array = (array - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return torch.from_numpy(array.transpose(2, 0, 1).copy())

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        if self.policy != "tile" or self.num_images(*image.size) == 1:
            return self._tensor(self._square(image)).unsqueeze(0)
        cols, rows = self.tile_grid(*image.size)
        grid = image.resize((cols * self.size, rows * self.size), _RESAMPLE[self.interpolation])
        tiles = [grid.crop((c * self.size, r * self.size, (c + 1) * self.size, (r + 1) * self.size))
                 for r in range(rows) for c in range(cols)]
        return torch.stack([self._tensor(t) for t in [*tiles, self._square(image)]])
