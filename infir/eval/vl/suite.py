"""The multimodal eval suite (``eval=vl_embedded``): also the training callback's suite for VL phases.

Tasks and their file formats (so a real copy can be pointed at with ``source: {path, image_root}``):

* ``render_text`` / ``render_math`` (``format: vqa``): JSONL rows ``{question_id, image, question,
  answer}``, scored by character accuracy + exact match (transcription) or exact match (QA).
* ``screenspot`` (``format: screenspot``): ScreenSpot's JSON, rows ``{img_filename, bbox: [x, y, w, h],
  instruction, data_type, data_source}``; the model answers a point in [0, 1000] coordinates and scores a
  hit when it falls inside ``bbox`` (ScreenSpot's click accuracy).

Greedy decoding through the chat template, the prompt built as training builds it. ``blind: true`` scores
every task a second time with each image replaced by a flat mean-colour image of the same size
(``<metric>_blind``): the gap is what the model reads from the image, not from the question.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from infir.eval.checks import check_vl_eval_config
from infir.eval.vl.metrics import char_accuracy, click_hit, exact_match
from infir.models.tokenizer import decode_text
from infir.records import read_rows
from infir.vision.embedded import eval_set
from infir.vision.encoding import encode_vl_prompt
from infir.vision.llava_json import IMAGE_PLACEHOLDER
from infir.vision.transforms import ImageProcessor

log = logging.getLogger(__name__)



@dataclass
class VLItem:
    id: str
    image: Path
    question: str
    answer: str
    bbox: tuple[float, float, float, float] | None = None


@dataclass
class VLTaskResult:
    metrics: dict[str, float]
    samples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _load_items(name: str, cfg: Mapping[str, Any], cache_dir: str) -> list[VLItem]:
    source = dict(cfg["source"])
    if "embedded" in source:
        path = eval_set(str(source["embedded"]), dict(source.get("params") or {}), cache_dir)
        root = path.parent
    elif "path" in source:
        path = Path(source["path"]).expanduser()
        root = Path(source.get("image_root") or path.parent).expanduser()
    else:
        raise ValueError(f"eval.tasks.{name}.source needs `embedded: <set>` or `path: <file>`, got {sorted(source)}")
    items, skipped = [], 0
    for index, row in enumerate(read_rows(path)):
        try:
            if cfg["format"] == "screenspot":
                image = row["img_filename"]
                item = VLItem(str(row.get("id", index)), root / image, str(row["instruction"]), "",
                              tuple(float(v) for v in row["bbox"]))
            else:
                item = VLItem(str(row.get("question_id", index)), root / row["image"], str(row["question"]),
                              str(row["answer"]))
        except (KeyError, TypeError, ValueError) as err:
            skipped += 1
            if skipped <= 3:
                log.warning("eval.tasks.%s: skipping record %d of %s: %r", name, index, path, err)
            continue
        if not item.image.is_file():
            skipped += 1
            log.warning("eval.tasks.%s: skipping record %d: missing image %s", name, index, item.image)
            continue
        items.append(item)
    if not items:
        raise ValueError(f"eval.tasks.{name}: no usable record in {path} ({skipped} skipped)")
    if skipped:
        log.warning("eval.tasks.%s: %d record(s) skipped", name, skipped)
    limit = cfg.get("limit")
    return items[: int(limit)] if limit else items


class VLEvalSuite:
    """Tasks loaded once; ``run(model, tokenizer, out_dir, processor)`` scores a VisionLanguageModel."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        check_vl_eval_config(cfg)
        self.cfg = dict(cfg)
        cache_dir = str(cfg.get("cache_dir") or ".cache")
        self.tasks = {name: (dict(task), _load_items(name, task, cache_dir))
                      for name, task in (cfg.get("tasks") or {}).items() if task is not None and task.get("enabled", True)}
        if not self.tasks:
            raise ValueError("eval: no enabled multimodal task")

    @torch.no_grad()
    def _answers(self, model, tokenizer, processor: ImageProcessor, items: list[VLItem], max_new_tokens: int,
                 blind: bool) -> list[str]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        answers: list[str] = []
        batch_size = int(self.cfg.get("batch_size", 16))
        try:
            for start in range(0, len(items), batch_size):
                chunk = items[start:start + batch_size]
                prompts, pixels, counts = [], [], []
                for item in chunk:
                    with Image.open(item.image) as opened:
                        image = opened.convert("RGB")
                    if blind:
                        mean = tuple(int(round(m * 255)) for m in processor.mean)
                        image = Image.new("RGB", image.size, mean)
                    tensor = processor(image)
                    messages = [{"role": "user", "content": f"{IMAGE_PLACEHOLDER}\n{item.question}"}]
                    prompts.append(encode_vl_prompt(tokenizer, messages, [tensor.shape[0]], model.tokens_per_image,
                                                    model.image_token_id))
                    pixels.append(tensor)
                    counts.append(tensor.shape[0])
                length = max(map(len, prompts))
                ids = torch.full((len(prompts), length), pad, dtype=torch.long)
                mask = torch.zeros((len(prompts), length), dtype=torch.long)
                for row, prompt in enumerate(prompts):  # left padding: every prompt ends where generation starts
                    ids[row, length - len(prompt):] = torch.tensor(prompt)
                    mask[row, length - len(prompt):] = 1
                out = model.generate(ids.to(device), mask.to(device), torch.cat(pixels).to(device),
                                     torch.tensor(counts, device=device), max_new_tokens=max_new_tokens,
                                     eos_token_id=tokenizer.eos_token_id, pad_token_id=pad,
                                     sample_ids=[i.id for i in chunk])
                for row in out.tolist():
                    if tokenizer.eos_token_id in row:
                        row = row[: row.index(tokenizer.eos_token_id)]
                    answers.append(decode_text(tokenizer, row).strip())
        finally:
            model.train(was_training)
        return answers

    def _score(self, metric: str, item: VLItem, answer: str) -> dict[str, float]:
        if metric == "click":
            with Image.open(item.image) as image:
                width, height = image.size
            return {"accuracy": click_hit(answer, item.bbox, width, height)}
        if metric == "transcription":
            return {"exact_match": exact_match(answer, item.answer), "char_accuracy": char_accuracy(answer, item.answer)}
        return {"exact_match": exact_match(answer, item.answer)}

    def run(self, model, tokenizer, out_dir: Path | None = None, processor: ImageProcessor | None = None
            ) -> dict[str, VLTaskResult]:
        if processor is None:
            raise ValueError("the multimodal eval needs the model's image processor")
        results: dict[str, VLTaskResult] = {}
        for name, (task, items) in self.tasks.items():
            started = time.perf_counter()
            max_new = int(task.get("max_new_tokens") or self.cfg.get("max_new_tokens", 16))
            answers = self._answers(model, tokenizer, processor, items, max_new, blind=False)
            scores = [self._score(task["metric"], item, answer) for item, answer in zip(items, answers)]
            metrics = {key: sum(s[key] for s in scores) / len(scores) for key in scores[0]}
            samples = [{"id": i.id, "question": i.question, "reference": i.answer or list(i.bbox or ()),
                        "prediction": a, **s} for i, a, s in zip(items, answers, scores)]
            if self.cfg.get("blind", True):
                blind = self._answers(model, tokenizer, processor, items, max_new, blind=True)
                blind_scores = [self._score(task["metric"], item, answer) for item, answer in zip(items, blind)]
                metrics.update({f"{key}_blind": sum(s[key] for s in blind_scores) / len(blind_scores)
                                for key in blind_scores[0]})
                for sample, answer in zip(samples, blind):
                    sample["prediction_blind"] = answer
            metrics["n"] = float(len(items))
            results[name] = VLTaskResult(metrics, samples, time.perf_counter() - started)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            for name, result in results.items():
                (out_dir / f"{name}.jsonl").write_text("".join(json.dumps(s) + "\n" for s in result.samples))
            (out_dir / "results.json").write_text(json.dumps({n: r.metrics for n, r in results.items()}, indent=2))
        return results
