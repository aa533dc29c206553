"""The multimodal phases' data: LLaVA-style records -> encoded samples -> shuffled, padded batches.

Records come from the embedded generators (written once as LLaVA JSON + PNG files into the cache,
then read back through the same reader user files go through) and from ``data_mix.files``. Samples are
not packed: each row is one conversation, padded to the longest in its batch, with its images decoded and
transformed at batch time (the tower input is small next to a decoded image cache). Epoch order, rank
split and exact resume are the text SFT's (:class:`~infir.data.iteration.ShuffledEpochs`,
:class:`~infir.data.sft_datamodule.EpochsDataModule`); validation is per source (``val/loss/<source>``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from infir.data.documents import TRAIN
from infir.data.iteration import ShuffledEpochs
from infir.data.sft_datamodule import EpochsDataModule
from infir.data.sources.select import keep_by_hash
from infir.vision.embedded import embedded_llava_files
from infir.vision.encoding import VLSample, collate_vl, encode_vl_record
from infir.vision.llava_json import VLRecord, read_llava_records
from infir.vision.transforms import ImageProcessor

log = logging.getLogger(__name__)
_SAMPLES_LOGGED = 3


def vl_records(mix_cfg: Mapping[str, Any], split: str, cache_dir: str) -> list[VLRecord]:
    """The mix's records of ``split``: embedded sources (generated into the cache) and ``files`` entries."""
    cap = mix_cfg.get("max_documents_per_split")
    files = embedded_llava_files(mix_cfg.get("sources") or {}, split, cache_dir,
                                 cap=None if cap is None else int(cap))
    for entry in mix_cfg.get("files") or []:
        if entry.get("split", TRAIN) == split:
            files.append((entry["path"], entry.get("image_root"), entry.get("source")))
    records: list[VLRecord] = []
    for path, image_root, source in files:
        records += read_llava_records(path, image_root, source).records
    if cap is not None:  # debug=smoke: a stable per-source sample (files too)
        records = keep_by_hash(records, int(cap), lambda r: r.id, lambda r: r.source)
    return records


def encode_records(tokenizer: PreTrainedTokenizerBase, records: Sequence[VLRecord], processor: ImageProcessor,
                   tokens_per_image: int, image_token_id: int, max_len: int, what: str
                   ) -> tuple[list[VLSample], dict[str, int]]:
    """Encoded samples plus skip counts by reason (too long, unreadable image, ...), logged."""
    samples: list[VLSample] = []
    skipped: dict[str, int] = {}
    for record in records:
        try:
            samples.append(encode_vl_record(tokenizer, record, processor, tokens_per_image, image_token_id, max_len))
        except ValueError as exc:
            reason = str(exc).split(":")[0]
            skipped[reason] = skipped.get(reason, 0) + 1
            if sum(skipped.values()) <= _SAMPLES_LOGGED:
                log.warning("%s: skipping %s: %s", what, record.id, exc)
    if skipped:
        log.warning("%s: kept %d of %d samples; skipped %s", what, len(samples), len(records), skipped)
    return samples, skipped


class VLDataModule(EpochsDataModule):
    """Image + text conversations for ``mm_align`` / ``mm_render`` / ``mm_sft``."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, processor: ImageProcessor, tokens_per_image: int,
                 image_token_id: int, train_records: Sequence[VLRecord], val_records: Sequence[VLRecord],
                 seq_len: int, micro_batch_size: int, global_batch_size: int, epochs: int, seed: int,
                 val_per_source: int = 64) -> None:
        super().__init__(seq_len, micro_batch_size, global_batch_size, epochs, seed)
        self.processor, self.pad_id = processor, tokenizer.pad_token_id or 0
        encode = partial(encode_records, tokenizer, processor=processor, tokens_per_image=tokens_per_image,
                         image_token_id=image_token_id, max_len=seq_len)
        self.train, self.skipped = encode(train_records, what="vl train")
        if not self.train:
            raise ValueError(f"vision-language data: no usable training sample (skipped {self.skipped})")
        by_source: dict[str, list[VLRecord]] = {}
        for record in val_records:
            by_source.setdefault(record.source, []).append(record)
        if not by_source:
            raise ValueError("vision-language data: no validation records; keep embedded data_mix.sources or add "
                             "a data_mix.files entry with split: validation")
        self.domains = sorted(by_source)
        self.val_samples = {s: encode(by_source[s][:val_per_source], what=f"vl validation/{s}")[0]
                            for s in self.domains}
        self._set_max_steps(self._epochs().total_steps(), "vision-language data")

    def _collate(self, samples: list[VLSample]) -> dict[str, Any]:
        return collate_vl(samples, self.processor, self.pad_id)

    def _epochs(self) -> ShuffledEpochs:
        """One process's batch sequence (every rank reads its part of it)."""
        return ShuffledEpochs(self.train, self._collate, self.seed, batch_size=self.micro_batch_size,
                              epochs=self.epochs, namespace="vl-epochs")

    def describe(self) -> dict[str, Any]:
        with_images = sum(bool(s.images) for s in self.train)
        return {"samples": len(self.train), "with_images": with_images, "text_only": len(self.train) - with_images,
                "skipped": self.skipped, "tokens": sum(len(s.input_ids) for s in self.train),
                "by_source": {src: sum(s.source == src for s in self.train) for src in sorted({s.source for s in self.train})},
                "epochs": self.epochs, "optimizer_steps": self.max_steps,
                "validation": {s: len(v) for s, v in self.val_samples.items()}}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self._rank_epochs(self._epochs()), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        batches = []
        for index, source in enumerate(self.domains):
            samples = self.val_samples[source]
            for start in range(0, len(samples), self.micro_batch_size):
                batch = self._collate(samples[start:start + self.micro_batch_size])
                batch["domain"] = torch.full((batch["input_ids"].shape[0],), index, dtype=torch.long)
                batches.append(batch)
        return DataLoader(batches, batch_size=None)
