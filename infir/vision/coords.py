"""Screen coordinates as InfiR-VL's GUI grounding uses them: integers normalised to [0, 1000].

Convention (used by every generator in :mod:`infir.vision`): a point is a pixel *index*
``x in [0, width - 1]`` (fractions allowed, e.g. a box centre ``(x0 + x1) / 2``), i.e. the
centre of pixel ``x``. The first pixel centre maps to 0 and the last to 1000:
``nx = round_half_up(1000 * x / (width - 1))`` and back ``x = round_half_up(nx * (width - 1) / 1000)``.
Scaling by ``width - 1`` rather than ``width`` is what makes the round trips exact (all integer
arithmetic, no float ties):

* side <= 1001 px: pixel -> normalised -> pixel is exact for every integer pixel (one pixel is
  at least one normalised unit, so rounding never merges two pixels);
* side >= 1001 px: normalised -> pixel -> normalised is exact for every value in [0, 1000]
  (the dual statement);
* side > 1001 px: pixel -> normalised -> pixel is off by at most
  ``floor((side - 1) / 2000 + 1/2)`` px (<= ``ceil(side / 1000) / 2``), e.g. 1 px on a 1920 screen;
* side < 1001 px: normalised -> pixel -> normalised cannot be exact (1001 values, fewer pixels);
  it is off by at most ``500 / (side - 1) + 1/2`` units and a second trip changes nothing.

A side of 1 px maps every pixel to 500 and every normalised value to pixel 0.
"""

from __future__ import annotations

import re
from fractions import Fraction

SCALE = 1000  # normalised coordinates live in [0, SCALE]


def _round_half_up(value: Fraction) -> int:
    """Exact rounding with ties up, so the mapping has no float-dependent edge cases."""
    return (value + Fraction(1, 2)).__floor__()


def _axis_to_normalised(pos: float, side: int, axis: str) -> int:
    if isinstance(side, bool) or not isinstance(side, int) or side < 1:
        raise ValueError(f"screen {axis} side must be a positive int, got {side!r}")
    if not 0 <= pos <= side - 1:
        raise ValueError(f"{axis}={pos!r} is outside the screen: pixel indices run 0..{side - 1}")
    if side == 1:
        return SCALE // 2
    return _round_half_up(Fraction(pos) * SCALE / (side - 1))


def _axis_to_pixels(n: int, side: int, axis: str) -> int:
    if isinstance(side, bool) or not isinstance(side, int) or side < 1:
        raise ValueError(f"screen {axis} side must be a positive int, got {side!r}")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= SCALE:
        raise ValueError(f"normalised {axis}={n!r} must be an int in [0, {SCALE}]")
    return _round_half_up(Fraction(n * (side - 1), SCALE))


def to_normalised(x: float, y: float, width: int, height: int) -> tuple[int, int]:
    """Pixel-index point (centre of pixel ``x``; fractions allowed) -> integers in [0, 1000]."""
    return _axis_to_normalised(x, width, "x"), _axis_to_normalised(y, height, "y")


def to_pixels(nx: int, ny: int, width: int, height: int) -> tuple[int, int]:
    """Normalised point in [0, 1000] -> the nearest pixel index on a ``width x height`` screen."""
    return _axis_to_pixels(nx, width, "x"), _axis_to_pixels(ny, height, "y")


def format_point(nx: int, ny: int) -> str:
    """The answer text the model is trained to emit, e.g. ``(512, 300)``."""
    for name, value in (("nx", nx), ("ny", ny)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SCALE:
            raise ValueError(f"{name}={value!r} must be an int in [0, {SCALE}]")
    return f"({nx}, {ny})"


# Two integers separated by a comma, optionally in () or []; not part of a decimal number
# ("0.5, 0.3" is no point) and keeping a leading minus so "(-5, 3)" reads as out of range.
_POINT = re.compile(r"(?<![\d.])(-?\d+)\s*,\s*(-?\d+)(?!\.?\d)")


def parse_point(text: str) -> tuple[int, int] | None:
    """First ``(x, y)`` / ``[x, y]`` / ``x,y`` integer pair in model output; None if absent or out of [0, 1000]."""
    match = _POINT.search(text)
    if match is None:
        return None
    nx, ny = int(match.group(1)), int(match.group(2))
    if not (0 <= nx <= SCALE and 0 <= ny <= SCALE):
        return None
    return nx, ny
