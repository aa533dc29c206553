"""The embedded multimodal data (offline, generated or bundled), written once as LLaVA JSON + PNG files.

Sources (``data_mix.sources`` of a ``kind: vl`` mix), each with its split discipline:

* ``caption``: captioned real images (scikit-learn digits, scikit-image photos) and labelled synthetic
  shapes (:mod:`infir.vision.captions`; splits disjoint by underlying item) -> "Describe the image." pairs;
  the alignment phase's data and the CLIP filter's input.
* ``render_text``: transcription of rendered strings (:mod:`infir.vision.render`); ``render_math``: QA on
  rendered arithmetic (answer = the result). Splits are assigned by a hash of the content (the string; the
  problem ``a op b``), so no held-out string or problem is ever trained on.
* ``gui``: synthetic screenshots (:mod:`infir.vision.gui`) with "click X" -> the element centre in
  [0, 1000] coordinates; splits by screen (a held-out screen is never seen, labels recur by design).
* ``text``: text-only conversations from the text SFT builders, mixed into instruction tuning.

Every source's files are a content-addressed cache artifact (``<cache>/vision_data/<hash>``: same
parameters -> same files), so each phase and every rank reads identical data. The held-out split of the
evaluated tasks is also written in the public benchmarks' formats (:func:`eval_set`): ScreenSpot JSON
for clicks, a VQA-style JSONL (``image``, ``question``, ``answer``) for the rendered-text tasks.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from infir.data.cache import cached_artifact
from infir.data.documents import HELDOUT_EVAL, TRAIN, VALIDATION
from infir.data.splits import assign_split

DATA_VERSION = 1  # bump when a generator's output changes for the same parameters
SPLIT_FIELDS = {TRAIN: "n_train", VALIDATION: "n_validation", HELDOUT_EVAL: "n_heldout"}
CAPTION_PROMPTS = ("Describe the image.", "What is in this picture?", "Write a short caption for the image.")
_DATA_FILE = "data.json"


def _split_fractions(params: Mapping[str, Any]) -> dict[str, float]:
    """Each held-out split's share of the content-key space, from the configured ``n_*`` (``_fractions_from``
    when a cap shrank one of them: the assignment, hence what is held out, must not change)."""
    counts = params.get("_fractions_from") or params
    total = sum(int(counts.get(f) or 0) for f in SPLIT_FIELDS.values())
    return {s: int(counts.get(f) or 0) / total for s, f in SPLIT_FIELDS.items() if s != TRAIN} if total else {}


def _generated(source: str, split: str, params: Mapping[str, Any], out: Path,
               make: Callable[[random.Random], tuple[Any, str, list[dict[str, Any]], dict[str, Any]]],
               key_of: Callable[[Any, int], str]) -> list[dict[str, Any]]:
    """Draw candidates ``i = 0, 1, ...`` (each from its own seeded rng), keep those whose content key hashes
    to ``split`` until its ``n_<split>`` are made. ``make`` returns (image, key material, turns, meta)."""
    wanted = int(params.get(SPLIT_FIELDS[split], 0))
    fractions, seed = _split_fractions(params), int(params.get("seed", 0))
    rows: list[dict[str, Any]] = []
    failures = 0
    (out / "images").mkdir(parents=True, exist_ok=True)
    for i in range(wanted * 200 + 1000):
        if len(rows) >= wanted:
            break
        try:
            image, content, turns, meta = make(random.Random(f"{source}:{seed}:{i}"))
        except ValueError as err:  # this draw's text or widgets do not fit its canvas: skip it, unless most do not
            failures += 1
            if failures > max(20, (i + 1) // 2):
                raise ValueError(f"modality.embedded_sets.{source} / data_mix.sources.{source}: {failures} of "
                                 f"{i + 1} draws failed, e.g. {err}") from err
            continue
        if assign_split(key_of(content, i), f"vl:{source}:{seed}", fractions, TRAIN) != split:
            continue  # a string or problem is in one split only; within it, renderings of it may repeat
        name = f"images/{source}-{split}-{len(rows):06d}.png"
        image.save(out / name)
        rows.append({"id": f"{source}:{split}:{len(rows)}", "image": name, "conversations": turns,
                     "source": source, "meta": {**meta, "width": image.width, "height": image.height}})
    if len(rows) < wanted:
        raise ValueError(f"data_mix.sources.{source}: only {len(rows)} {split} items found, "
                         f"{wanted} asked; widen its ranges or lower {SPLIT_FIELDS[split]}")
    return rows


def _turns(question: str, answer: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}]


def _render_options(params: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("width_range", "height_range", "min_font_px", "max_font_px", "legible_at", "noise_prob", "fonts")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items() if k in keys}


def _render_text(split: str, params: Mapping[str, Any], out: Path) -> list[dict[str, Any]]:
    from infir.vision.render import random_text, transcription_sample

    words = params.get("words")

    def make(rng: random.Random):
        text = random_text(rng, length_range=tuple(params.get("length_range", (1, 6))),
                           alphabet=params.get("alphabet") or "abcdefghijklmnopqrstuvwxyz0123456789",
                           words=list(words) if words else None)
        sample = transcription_sample(text, rng, **_render_options(params))
        return sample.image, text, _turns(sample.question, sample.answer), {"task": "transcription",
                                                                               "answer": sample.answer}
    return _generated("render_text", split, params, out, make, lambda content, i: content)


def _render_math(split: str, params: Mapping[str, Any], out: Path) -> list[dict[str, Any]]:
    from infir.vision.render import arithmetic_sample

    def make(rng: random.Random):
        sample = arithmetic_sample(rng, operand_range=tuple(params.get("operand_range", (0, 9))),
                                   operators=tuple(params.get("operators", ("+", "-"))), **_render_options(params))
        m = sample.meta
        return sample.image, f"{m['a']}{m['op']}{m['b']}", _turns(sample.question, sample.answer), \
            {"task": "arithmetic", "answer": sample.answer}
    return _generated("render_math", split, params, out, make, lambda content, i: content)


def _gui(split: str, params: Mapping[str, Any], out: Path) -> list[dict[str, Any]]:
    from infir.vision.gui import click_sample, synth_screen

    sizes = [tuple(s) for s in params.get("sizes") or [(320, 240), (480, 320), (640, 480)]]

    def make(rng: random.Random):
        screen = synth_screen(rng, sizes=sizes, n_elements=tuple(params.get("n_elements", (2, 4))),
                              vocabulary=params.get("vocabulary"), kinds=tuple(params.get("kinds", ("button",))),
                              legible_at=params.get("legible_at"), legible_px=int(params.get("legible_px", 10)),
                              menu_bar=params.get("menu_bar"))
        element = rng.choice(screen.elements)
        instruction, answer = click_sample(screen, element, rng)
        meta = {"task": "click", "answer": answer, "label": element.label, "kind": element.kind,
                "bbox": list(element.box)}
        return screen.image, None, _turns(instruction, answer), meta
    return _generated("gui", split, params, out, make, lambda content, i: f"screen-{i}")


def _caption(split: str, params: Mapping[str, Any], out: Path) -> list[dict[str, Any]]:
    from infir.vision.captions import caption_pairs

    wanted = int(params.get(SPLIT_FIELDS[split], 0))
    pairs = caption_pairs(split if split != HELDOUT_EVAL else "test", seed=int(params.get("seed", 0)), limit=wanted)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for index, pair in enumerate(pairs):
        name = f"images/caption-{split}-{index:06d}.png"
        pair.image.save(out / name)
        prompt = CAPTION_PROMPTS[index % len(CAPTION_PROMPTS)]
        rows.append({"id": f"caption:{split}:{pair.id}", "image": name, "conversations": _turns(prompt, pair.caption),
                     "source": "caption", "meta": {"task": "caption", "origin": pair.source, "label": pair.label}})
    return rows


def _text(split: str, params: Mapping[str, Any], out: Path) -> list[dict[str, Any]]:
    from infir.data.sources.sft_embedded import BUILDER_OF_MIX_SOURCE, sft_conversations

    sources = {BUILDER_OF_MIX_SOURCE[name]: dict(p) for name, p in (params.get("sources") or {}).items()}
    limit = params.get(SPLIT_FIELDS[split])
    records = sft_conversations(split, sources)[: None if limit is None else int(limit)]
    return [{"id": f"text:{r.get('id', i)}", "messages": r["messages"], "source": "text"}
            for i, r in enumerate(records)]


BUILDERS: dict[str, Callable[[str, Mapping[str, Any], Path], list[dict[str, Any]]]] = {
    "caption": _caption, "render_text": _render_text, "render_math": _render_math, "gui": _gui, "text": _text}


def source_dir(source: str, params: Mapping[str, Any], split: str, cache_dir: str | Path) -> Path:
    """The cached folder holding ``data.json`` + ``images/`` of one source and split (built if absent)."""
    if source not in BUILDERS:
        raise ValueError(f"data_mix.sources.{source}: no vision-language builder; known: {sorted(BUILDERS)}")
    clean = {k: v for k, v in dict(params).items() if not str(k).startswith("_") or k == "_fractions_from"}
    spec = {"source": source, "split": split, "params": clean, "version": DATA_VERSION}

    def build(out: Path) -> dict[str, Any]:
        rows = BUILDERS[source](split, clean, out)
        (out / _DATA_FILE).write_text(json.dumps(rows))
        return {"records": len(rows)}
    return Path(cached_artifact(cache_dir, "vision_data", spec, build))


def embedded_llava_files(sources: Mapping[str, Any], split: str, cache_dir: str | Path,
                         cap: int | None = None) -> list[tuple[str, str, str]]:
    """(LLaVA JSON path, image root, source name) of every embedded source of ``split``; ``cap``
    (``data_mix.max_documents_per_split``, debug=smoke) generates at most that many per source."""
    files = []
    for name, params in sources.items():
        if params is None:  # data_mix.sources.<name>=null removes a source
            continue
        params = dict(params)
        field = SPLIT_FIELDS[split]
        if cap is not None and params.get(field) is not None and int(params[field]) > cap:
            params[field] = cap  # fewer of this split only: the split assignment (seed, other fractions) is kept
            params["_fractions_from"] = {f: dict(sources[name]).get(f) for f in SPLIT_FIELDS.values()}
        directory = source_dir(name, params, split, cache_dir)
        files.append((str(directory / _DATA_FILE), str(directory), name))
    return files


def eval_set(task: str, params: Mapping[str, Any], cache_dir: str | Path) -> Path:
    """The held-out split of ``task`` in its public benchmark format, written beside the LLaVA rows:
    ``screenspot.json`` for ``gui`` (``img_filename``, ``bbox`` as x, y, w, h pixels, ``instruction``,
    ``data_type``, ``data_source``) and ``vqa.jsonl`` for ``render_text``/``render_math``."""
    directory = source_dir(task, params, HELDOUT_EVAL, cache_dir)
    rows = json.loads((directory / _DATA_FILE).read_text())
    if task == "gui":
        target = directory / "screenspot.json"
        if not target.is_file():
            items = [{"img_filename": r["image"], "instruction": r["conversations"][0]["value"].split("\n", 1)[1],
                      "bbox": [r["meta"]["bbox"][0], r["meta"]["bbox"][1],
                               r["meta"]["bbox"][2] - r["meta"]["bbox"][0] + 1,
                               r["meta"]["bbox"][3] - r["meta"]["bbox"][1] + 1],
                      "data_type": "text", "data_source": "infir-synthetic"} for r in rows]
            target.write_text(json.dumps(items))
        return target
    target = directory / "vqa.jsonl"
    if not target.is_file():
        target.write_text("".join(json.dumps({"question_id": r["id"], "image": r["image"],
                                              "question": r["conversations"][0]["value"].split("\n", 1)[1],
                                              "answer": r["meta"]["answer"]}) + "\n" for r in rows))
    return target
