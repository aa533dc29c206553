"""The SFT phase's data: conversations -> assistant-masked token sequences -> packed epochs.

Conversations come from the embedded builders (train split for training, validation split for
``val/loss/<source>``) and from conversation files (``messages`` or ShareGPT records). Packs never
attend across samples (4D block-causal mask + per-sample positions); each epoch shuffles the pack
order from (seed, epoch); ranks split the whole run's batch sequence (infir/data/iteration.py) and the
position of record is the trainer's optimizer step, so resume is exact, also on another world size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from infir.data.documents import TRAIN, VALIDATION
from infir.data.iteration import ShuffledEpochs
from infir.data.sft import SFTEpochs, collate, encode_conversations, pack
from infir.data.sources.select import keep_by_hash
from infir.data.sources.sft_embedded import BUILDER_OF_MIX_SOURCE, sft_conversations
from infir.records import read_rows

log = logging.getLogger(__name__)


def conversations(mix_cfg: Mapping[str, Any], split: str) -> list[dict[str, Any]]:
    """Embedded conversations of ``split`` plus the mix's conversation files of that split."""
    sources = {}
    for name, params in (mix_cfg.get("sources") or {}).items():
        if name not in BUILDER_OF_MIX_SOURCE:
            raise ValueError(f"data_mix.sources.{name}: no SFT conversation builder; known: {sorted(BUILDER_OF_MIX_SOURCE)}")
        if params is not None:
            sources[BUILDER_OF_MIX_SOURCE[name]] = {k: v for k, v in dict(params).items() if not k.startswith("_")}
    records = sft_conversations(split, sources) if sources else []
    for entry in mix_cfg.get("files") or []:
        if entry.get("split", TRAIN) == split:
            rows = read_rows(entry["path"])
            records += [{**row, "source": entry.get("source", "files")} for row in rows]
    cap = mix_cfg.get("max_documents_per_split")
    if cap is not None:  # at most N conversations per source (debug=smoke); a stable sample, not the first N
        records = keep_by_hash(records, int(cap), lambda r: json.dumps(r, sort_keys=True, default=str),
                               lambda r: str(r.get("source")))
    return records


class EpochsDataModule(L.LightningDataModule):
    """Batch geometry and the resume contract shared by the SFT and vision-language data modules: the
    position of record is the trainer's optimizer step ``s``; every step takes ``accumulate`` (global batch /
    micro batch) consecutive micro-batches of the run's one global batch sequence, split over the ranks, so
    a resume continues at global micro-batch ``s * accumulate`` whatever the world size was or is now (the
    per-rank accumulation times the world size is ``accumulate`` on any). The checkpoint also pins what would
    change the batch sequence (seed, seq_len, global and micro batch), so a resume under a different one
    fails naming it."""

    def __init__(self, seq_len: int, micro_batch_size: int, global_batch_size: int, epochs: int, seed: int) -> None:
        super().__init__()
        if global_batch_size % micro_batch_size:
            raise ValueError(f"phase.global_batch_size={global_batch_size} is not a multiple of "
                             f"phase.micro_batch_size={micro_batch_size}")
        self.seq_len, self.micro_batch_size, self.global_batch_size = seq_len, micro_batch_size, global_batch_size
        self.epochs, self.seed = epochs, seed
        self.accumulate = global_batch_size // micro_batch_size
        self.steps_consumed = 0

    def _set_max_steps(self, micro_steps: int, what: str) -> None:
        self.max_steps = micro_steps // self.accumulate
        if self.max_steps < 1:
            raise ValueError(f"{what}: {micro_steps} micro-batches cannot make one optimizer step of {self.accumulate}")

    def _ranks(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer else (0, 1)

    def _rank_epochs(self, epochs: ShuffledEpochs) -> ShuffledEpochs:
        """``epochs`` as this rank reads it, continuing after the optimizer steps already done."""
        rank, world = self._ranks()
        dataset = epochs.for_rank(rank, world, self.accumulate)
        dataset.resume_after(self.steps_consumed)
        return dataset

    def _pinned(self) -> dict[str, int]:
        return {"seed": self.seed, "seq_len": self.seq_len, "global_batch_size": self.global_batch_size,
                "micro_batch_size": self.micro_batch_size}

    def state_dict(self) -> dict[str, Any]:
        steps = self.trainer.global_step if self.trainer else self.steps_consumed
        return {"optimizer_steps": int(steps), **self._pinned()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in self._pinned().items():  # a key an older checkpoint lacks is not checked
            if state.get(key, value) != value:
                raise ValueError(f"resume: checkpoint was made with phase.{key}={state[key]}, config now says "
                                 f"{value}; an exact resume needs the same value (or start a new run)")
        self.steps_consumed = int(state["optimizer_steps"])


class SFTDataModule(EpochsDataModule):
    """Packed, assistant-masked SFT batches; validation per source (the ``domains`` of the run)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, train_records: Sequence[Mapping[str, Any]],
                 val_records: Sequence[Mapping[str, Any]], seq_len: int, micro_batch_size: int,
                 global_batch_size: int, epochs: int, seed: int, val_per_source: int = 64) -> None:
        super().__init__(seq_len, micro_batch_size, global_batch_size, epochs, seed)
        self.pad_id = tokenizer.pad_token_id or 0
        self.train = encode_conversations(tokenizer, train_records, seq_len, source="sft train")
        if not self.train.samples:
            raise ValueError("SFT: no usable training conversation (see the skip counts above)")
        by_source: dict[str, list[Mapping[str, Any]]] = {}
        for record in val_records:
            by_source.setdefault(str(record.get("source", "sft")), []).append(record)
        if not by_source:
            raise ValueError("SFT: no validation conversations; give data_mix.files an entry with split: validation "
                             "or keep embedded data_mix.sources")
        self.domains = sorted(by_source)
        self.val_samples = {s: encode_conversations(tokenizer, by_source[s][:val_per_source], seq_len,
                                                    source=f"sft validation/{s}").samples for s in self.domains}
        self.epochs_plan = SFTEpochs(self.train.samples, seq_len, seed, batch_size=micro_batch_size, epochs=epochs,
                                     pad_id=self.pad_id)  # one process's batch sequence: every rank reads its part
        self._set_max_steps(self.epochs_plan.total_steps(), "SFT")

    def describe(self) -> dict[str, Any]:
        return {"conversations": len(self.train.samples), "skipped": self.train.skipped,
                "truncated": self.train.truncated, "tokens": self.train.tokens,
                "trained_tokens": self.train.trained_tokens, "epochs": self.epochs, "optimizer_steps": self.max_steps,
                "validation": {s: len(v) for s, v in self.val_samples.items()}}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self._rank_epochs(self.epochs_plan), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        batches = []
        for index, source in enumerate(self.domains):
            packs = pack(self.val_samples[source], self.seq_len, self.pad_id)  # one source per pack
            for start in range(0, len(packs), self.micro_batch_size):
                batch = collate(packs[start:start + self.micro_batch_size])
                batch["domain"] = torch.full((batch["input_ids"].shape[0],), index, dtype=torch.long)
                batches.append(batch)
        return DataLoader(batches, batch_size=None)


def build_sft_datamodule(mix_cfg: Mapping[str, Any], phase_cfg: Mapping[str, Any], tokenizer: PreTrainedTokenizerBase,
                         seed: int) -> SFTDataModule:
    """The SFT data module from ``data_mix`` (conversations) and ``phase`` (packing, batches, epochs)."""
    return SFTDataModule(tokenizer, conversations(mix_cfg, TRAIN), conversations(mix_cfg, VALIDATION),
                         seq_len=int(phase_cfg["seq_len"]), micro_batch_size=int(phase_cfg["micro_batch_size"]),
                         global_batch_size=int(phase_cfg["global_batch_size"]), epochs=int(phase_cfg["epochs"]),
                         seed=seed, val_per_source=int(mix_cfg.get("val_per_source", 64)))
