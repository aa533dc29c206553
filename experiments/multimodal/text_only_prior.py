"""The best a model that never sees the image can score on the embedded multimodal held-out sets.

A text-only model sees only the question. Its best exact-match answer to a question is that question's most
frequent training answer, and its best click for 'Click "X".' is the point inside the most training boxes
of label X. Those scores bound any text-only baseline trained on the same data, so the VL model beats "a
text-only baseline" when it beats them. Rendered-text transcription is 0 by construction: held-out
strings never occur in training (splits are assigned by a hash of the string).

    python experiments/multimodal/text_only_prior.py --cache cache [--limit 100]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from infir.data.documents import HELDOUT_EVAL, TRAIN  # noqa: E402
from infir.vision.coords import to_normalised, to_pixels  # noqa: E402
from infir.vision.embedded import source_dir  # noqa: E402


def _rows(task: str, params: dict, split: str, cache: str) -> list[dict]:
    return json.loads((source_dir(task, params, split, cache) / "data.json").read_text())


def _question(row: dict) -> str:
    return row["conversations"][0]["value"].split("\n", 1)[1]


def _label(row: dict) -> str:
    found = re.search(r'"([^"]+)"', _question(row))
    return found.group(1) if found else _question(row)


def qa_prior(train: list[dict], heldout: list[dict]) -> float:
    """Exact match of the per-question majority training answer."""
    answers: dict[str, Counter] = defaultdict(Counter)
    for row in train:
        answers[_question(row)][row["meta"]["answer"]] += 1
    hits = [answers[_question(r)].most_common(1)[0][0] == r["meta"]["answer"] if answers[_question(r)] else False
            for r in heldout]
    return sum(hits) / len(hits)


def click_prior(train: list[dict], heldout: list[dict]) -> float:
    """Hit rate of the per-label point (in [0, 1000] coordinates) that falls in the most training boxes."""
    boxes: dict[str, list[tuple[int, int, int, int]]] = defaultdict(list)
    for row in train:
        w, h = row["meta"]["width"], row["meta"]["height"]
        x0, y0, x1, y1 = row["meta"]["bbox"]
        boxes[_label(row)].append((*to_normalised(x0, y0, w, h), *to_normalised(x1, y1, w, h)))
    best: dict[str, tuple[int, int]] = {}
    for label, items in boxes.items():
        candidates = [((a + c) // 2, (b + d) // 2) for a, b, c, d in items]
        best[label] = max(candidates, key=lambda p: sum(a <= p[0] <= c and b <= p[1] <= d for a, b, c, d in items))
    hits = []
    for row in heldout:
        point = best.get(_label(row))
        if point is None:
            hits.append(False)
            continue
        x, y = to_pixels(*point, row["meta"]["width"], row["meta"]["height"])
        x0, y0, x1, y1 = row["meta"]["bbox"]
        hits.append(x0 <= x <= x1 and y0 <= y <= y1)
    return sum(hits) / len(hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(REPO / "cache"), help="the run's paths.cache_dir")
    parser.add_argument("--limit", type=int, default=100, help="held-out items scored (eval=vl_embedded's limit)")
    args = parser.parse_args()
    sets = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "modality" / "vision.yaml").embedded_sets)
    result = {}
    for task, scorer in (("render_math", qa_prior), ("render_text", qa_prior), ("gui", click_prior)):
        train = _rows(task, sets[task], TRAIN, args.cache)
        heldout = _rows(task, sets[task], HELDOUT_EVAL, args.cache)[: args.limit]
        result[task] = round(scorer(train, heldout), 4)
    print(json.dumps({"text_only_prior": result, "held_out_items": args.limit}, indent=2))


if __name__ == "__main__":
    main()
