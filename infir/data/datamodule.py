"""LightningDataModule for packed, mixed pre-training sequences.

Its checkpointed state is the number of sequences consumed; the mixture plan
and the global batch order are pure functions of the seed, so that number is
all a resume (on any world size) needs: each optimizer step reads the same
global batch on any number of ranks (and Lightning's own micro-batch counters
follow the new accumulation: infir.training.distributed.ResumeOnAnyWorldSize).
The SFT and vision-language modules keep the same contract in optimizer steps.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import ConcatDataset, DataLoader

from infir.data.corpus import PreparedCorpus
from infir.data.documents import TRAIN, VALIDATION
from infir.data.mixture import GlobalOrderBatchSampler, MixtureDataset, MixturePlan, WindowDataset
from infir.data.token_shards import TokenStream
from infir.models.tokenizer import token_byte_lengths

log = logging.getLogger(__name__)


class PackedMixtureDataModule(L.LightningDataModule):
    def __init__(self, corpus: PreparedCorpus, weights: Mapping[str, float], seq_len: int,
                 micro_batch_size: int, global_batch_size: int, token_budget: int, seed: int,
                 val_windows_per_domain: int = 64, num_workers: int = 0, document_masking: bool = False) -> None:
        super().__init__()
        self.corpus = corpus
        self.domains = corpus.domains
        self.seq_len = seq_len
        self.micro_batch_size = micro_batch_size
        self.global_batch_size = global_batch_size
        self.num_workers = num_workers
        self.document_masking = document_masking
        self.val_windows_per_domain = val_windows_per_domain
        self.sequences_consumed = 0
        self.byte_lengths = token_byte_lengths(corpus.tokenizer, max(len(corpus.tokenizer), 1))
        self.train_streams = [TokenStream(corpus.stream_dir(d, TRAIN), seq_len) for d in self.domains]
        self.val_streams = [TokenStream(corpus.stream_dir(d, VALIDATION), seq_len) for d in self.domains]
        for domain, stream in zip(self.domains, self.val_streams):
            if stream.n_windows == 0:
                raise ValueError(f"data_mix: validation text of domain {domain!r} is shorter than one "
                                 f"sequence of {seq_len} tokens")
        self.plan = MixturePlan([weights[d] for d in self.domains],
                                [s.n_windows for s in self.train_streams], seed)
        self.max_steps = token_budget // (seq_len * global_batch_size)
        if self.max_steps < 1:
            raise ValueError(f"data_mix.token_budget={token_budget} is less than one global batch "
                             f"({global_batch_size} x {seq_len} tokens)")
        self.total_sequences = self.max_steps * global_batch_size

    def describe(self) -> dict[str, Any]:
        """Per-domain tokens, share and epochs over the run's budget (logged once at start)."""
        counts = self.plan.domain_counts(self.total_sequences)
        return {d: {"train_tokens": s.tokens, "sequences": int(c),
                    "epochs": round(float(c) / max(1, s.n_windows), 3)}
                for d, s, c in zip(self.domains, self.train_streams, counts)}

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        if self.global_batch_size % (self.micro_batch_size * world):
            raise ValueError(f"phase.global_batch_size={self.global_batch_size} is not divisible by "
                             f"phase.micro_batch_size={self.micro_batch_size} x world size {world}")
        sampler = GlobalOrderBatchSampler(self.total_sequences, self.micro_batch_size,
                                          start=self.sequences_consumed, rank=rank, world_size=world)
        dataset = MixtureDataset(self.train_streams, self.plan, self.total_sequences, self.document_masking)
        return DataLoader(dataset, batch_sampler=sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        dataset = ConcatDataset([WindowDataset(s, i, self.val_windows_per_domain, self.byte_lengths, self.document_masking)
                                 for i, s in enumerate(self.val_streams)])
        indices = np.arange(rank, len(dataset), world).tolist()  # ranks split validation; sums are all-reduced
        return DataLoader(dataset, batch_size=self.micro_batch_size, sampler=indices,
                          num_workers=self.num_workers)

    def state_dict(self) -> dict[str, Any]:
        trainer = self.trainer
        consumed = trainer.global_step * self.global_batch_size if trainer else self.sequences_consumed
        return {"sequences_consumed": int(consumed), "seed": self.plan.seed,
                "global_batch_size": self.global_batch_size, "seq_len": self.seq_len}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = {"seed": self.plan.seed, "global_batch_size": self.global_batch_size, "seq_len": self.seq_len}
        for key, value in mine.items():
            if state.get(key, value) != value:
                raise ValueError(f"resume: checkpoint was made with {key}={state[key]}, config now says {value}; "
                                 "an exact resume needs the same value (or start a new run)")
        self.sequences_consumed = int(state["sequences_consumed"])
        log.info("data position restored: %d sequences consumed", self.sequences_consumed)
