"""Learning-rate schedules as step -> multiplier of the peak LR.

Plain picklable objects (not lambdas) so LambdaLR state checkpoints cleanly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("cosine", "wsd", "linear", "constant")


@dataclass(frozen=True)
class LRSchedule:
    """Linear warmup, then ``cosine`` to the floor, ``wsd`` (warmup-stable-decay: flat,
    then linear decay over the last ``decay_fraction``), ``linear`` decay, or ``constant``."""

    kind: str
    total_steps: int
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    decay_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"phase.schedule.kind must be one of {KINDS}, got {self.kind!r}")
        if self.total_steps < 1 or not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(f"phase.schedule: need 0 <= warmup_steps ({self.warmup_steps}) <= "
                             f"total_steps ({self.total_steps}) and total_steps >= 1")
        if not 0 <= self.min_lr_ratio <= 1 or not 0 < self.decay_fraction <= 1:
            raise ValueError("phase.schedule: min_lr_ratio must be in [0, 1] and decay_fraction in (0, 1]")

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        floor = self.min_lr_ratio
        decay_start = self.warmup_steps
        if self.kind == "wsd":
            decay_steps = max(1, round(self.decay_fraction * self.total_steps))
            decay_start = max(self.warmup_steps, self.total_steps - decay_steps)
        # The last step (total_steps - 1) lands exactly on the floor.
        progress = min(1.0, max(0.0, (step - decay_start) / max(1, self.total_steps - 1 - decay_start)))
        if self.kind in ("linear", "wsd"):
            return 1.0 - (1.0 - floor) * progress
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_steps_from(total_steps: int, warmup_steps: int | None, warmup_ratio: float | None) -> int:
    """Warmup given as steps or as a ratio of the run (the paper's SFT uses ratio 0.1)."""
    if warmup_steps is not None:
        return int(warmup_steps)
    return int(round((warmup_ratio or 0.0) * total_steps))
