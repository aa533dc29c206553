"""What ``modality=vision`` changes in a training run: tokenizer, model, image processor and data.

The language model comes from ``phase.init_from`` (a text export ``hf:<dir>``, a VL export, a VL
checkpoint) or, with ``scratch``, from the ``model`` size config; then the tokenizer is a BPE trained on
the mix's training conversations (cached by content, like the text default's) unless ``tokenizer.path``
names one. The rest of the run (Trainer, loggers, checkpoints, resume, export, eval) is the text path's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from infir.data.documents import TRAIN, VALIDATION
from infir.models.chat_template import ensure_chat_template
from infir.models.tokenizer import load_tokenizer, trained_or_loaded_tokenizer
from infir.models.vlm.build import build_vlm
from infir.models.vlm.model import VisionLanguageModel
from infir.vision.datamodule import VLDataModule, vl_records
from infir.vision.llava_json import VLRecord
from infir.vision.transforms import ImageProcessor


def _conversation_text(records: list[VLRecord]) -> list[str]:
    return [m["content"].replace("<image>", "") for r in records for m in r.messages]


def vision_language_setup(cfg: DictConfig, tokenizer_cfg: Mapping[str, Any]
                          ) -> tuple[VLDataModule, Any, dict[str, Any], VisionLanguageModel, ImageProcessor]:
    """(datamodule, tokenizer, data summary, model, image processor) of a VL phase."""
    cache = str(cfg.paths.cache_dir)
    train_records = vl_records(cfg.data_mix, TRAIN, cache)
    val_records = vl_records(cfg.data_mix, VALIDATION, cache)
    init_from = str(cfg.phase.init_from)
    if tokenizer_cfg.get("path"):
        tokenizer, tokenizer_dir = load_tokenizer(tokenizer_cfg["path"]), Path(tokenizer_cfg["path"])
    elif init_from == "scratch":
        tokenizer, tokenizer_dir = trained_or_loaded_tokenizer(None, _conversation_text(train_records),
                                                               int(tokenizer_cfg["vocab_size"]),
                                                               int(tokenizer_cfg["min_frequency"]), cache,
                                                               split_digits=bool(tokenizer_cfg.get("split_digits")))
    else:
        raise ValueError(f"phase.init_from={init_from}: cannot find its tokenizer; set tokenizer.path")
    tokenizer = ensure_chat_template(tokenizer)
    model, processor = build_vlm(cfg.modality, cfg.model, tokenizer, init_from=init_from)
    phase = cfg.phase
    datamodule = VLDataModule(tokenizer, processor, model.tokens_per_image, model.image_token_id, train_records,
                              val_records, seq_len=int(phase.seq_len), micro_batch_size=int(phase.micro_batch_size),
                              global_batch_size=int(phase.global_batch_size), epochs=int(phase.epochs),
                              seed=int(cfg.seed), val_per_source=int(cfg.data_mix.get("val_per_source", 64)))
    summary = {"tokenizer": str(tokenizer_dir), "image_processor": processor.to_dict(),
               "tokens_per_image": model.tokens_per_image, "vision_tower": model.vision_tower.spec.to_dict()}
    return datamodule, tokenizer, summary, model, processor
