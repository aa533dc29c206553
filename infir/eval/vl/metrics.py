"""Scores of the multimodal tasks, as the public benchmarks define them.

* Transcription (OCR-style): exact match after stripping, and character accuracy ``1 - CER`` with CER the
  Levenshtein distance over the reference length, floored at 0 (the usual OCR metric).
* Rendered-arithmetic QA: exact match of the stripped answer (VQA-style, one reference).
* Clicks: ScreenSpot's criterion: the predicted point lies inside the target's box (``bbox`` as
  ``x, y, w, h`` pixels); an unparsable prediction is a miss.
"""

from __future__ import annotations

from collections.abc import Sequence

from infir.vision.coords import parse_point, to_pixels


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), O(len(a) * len(b)) with two rows."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def char_accuracy(prediction: str, reference: str) -> float:
    """``max(0, 1 - CER)``; an empty reference scores 1 only for an empty prediction."""
    prediction, reference = prediction.strip(), reference.strip()
    if not reference:
        return float(not prediction)
    return max(0.0, 1.0 - levenshtein(prediction, reference) / len(reference))


def exact_match(prediction: str, reference: str) -> float:
    return float(prediction.strip() == reference.strip())


def click_hit(prediction: str, bbox_xywh: Sequence[float], width: int, height: int) -> float:
    """1.0 when the point in ``prediction`` ([0, 1000] coordinates) falls inside the pixel box."""
    point = parse_point(prediction)
    if point is None:
        return 0.0
    x, y = to_pixels(point[0], point[1], width, height)
    bx, by, bw, bh = bbox_xywh
    return float(bx <= x <= bx + bw and by <= y <= by + bh)
