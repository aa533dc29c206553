"""LightningModule wrapping a transformers causal LM for next-token training.

The loss is computed here from logits and shifted targets (the data already
provides ``labels = input_ids`` shifted by one), so the bare-PyTorch benchmark
and this module run the identical computation. ``model.loss=chunked`` computes
it from the hidden states instead (:mod:`infir.training.speed.chunked_loss`),
never holding the full-vocabulary logits. Packed batches (SFT, document-masked
pre-training) carry ``segment_ids``; :mod:`infir.models.packed_attention` turns
them into the attention kernel's mask.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.strategies import ModelParallelStrategy

from infir.models.packed_attention import packed_model_inputs
from infir.training.run import PENDING_ROW_KEY, pending_log_row
from infir.training.schedules import LRSchedule
from infir.training.speed import LOSSES
from infir.training.speed.chunked_loss import chunked_next_token_loss
from infir.training.speed.checkpointing import enable_activation_checkpointing
from infir.training.speed.compile import compile_model
from infir.training.speed.fsdp2 import shard_model

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy in fp32 over all positions whose label is not ``IGNORE_INDEX``."""
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX,
                           reduction=reduction)


def build_adamw(model: torch.nn.Module, lr: float, weight_decay: float, betas: Sequence[float],
                eps: float, fused: bool | None, lr_groups: Mapping[str, float] | None = None) -> torch.optim.AdamW:
    """AdamW without decay on norms/biases (1-D tensors); fused kernels where the device has them.

    ``lr_groups`` (``phase.optimizer.lr_groups``) gives parameters whose name starts with a prefix their own
    peak LR, e.g. ``{projector: 1.0e-3}`` beside an LM at ``lr`` (LLaVA: projector 1e-3 in alignment, 2e-5 in
    instruction tuning); the schedule scales every group by the same factor. Groups are ordered base first,
    so ``param_groups[0]`` is the base LR.
    """
    prefixes = sorted(lr_groups or {}, key=len, reverse=True)  # the longest matching prefix wins
    named: dict[str, list[torch.nn.Parameter]] = {"": []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            named.setdefault(next((p for p in prefixes if name.startswith(p)), ""), []).append(param)
    groups = []
    for prefix, params in named.items():
        group_lr = float(lr_groups[prefix]) if prefix else lr
        for decay in (True, False):
            chosen = [p for p in params if (p.ndim >= 2) == decay]
            if chosen or (not prefix and decay):
                groups.append({"params": chosen, "weight_decay": weight_decay if decay else 0.0, "lr": group_lr,
                               "name": prefix or "base"})
    kwargs = {"lr": lr, "betas": tuple(betas), "eps": eps}
    if fused is not False:
        try:
            return torch.optim.AdamW(groups, fused=True, **kwargs)
        except (RuntimeError, ValueError) as err:
            if fused:
                raise ValueError(f"phase.optimizer.fused=true is not supported here: {err}") from err
            log.info("fused AdamW unavailable (%s); using the foreach implementation", err)
    return torch.optim.AdamW(groups, foreach=True, **kwargs)


class CausalLMModule(L.LightningModule):
    """Next-token training with per-domain validation loss and exact-resume RNG state.

    ``speed`` holds the model group's speed switches (``compile``, ``activation_checkpointing``, ``loss``,
    ``loss_chunk_tokens``); they are applied in :meth:`configure_model`, once, in the order FSDP2 needs
    (checkpointing, then compilation, then sharding).
    """

    def __init__(self, model: torch.nn.Module, optimizer: Mapping[str, Any], schedule: LRSchedule,
                 domains: Sequence[str], tokens_per_step: int, speed: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.model = model
        self.optimizer_cfg = dict(optimizer)
        self.schedule = schedule
        self.domains = list(domains)
        self.tokens_per_step = tokens_per_step
        self.speed = {"compile": "eager", "activation_checkpointing": False, "loss": "plain",
                      "loss_chunk_tokens": 4096, **(speed or {})}
        if self.speed["loss"] not in LOSSES:
            raise ValueError(f"model.loss must be one of {', '.join(LOSSES)}; got {self.speed['loss']!r}")
        self._val_sums: torch.Tensor | None = None
        self._configured = False

    def configure_model(self) -> None:
        """Apply the speed switches (Lightning calls this before every fit/validate; they apply once)."""
        if self._configured:
            return
        self._configured = True
        checkpointing = self.speed["activation_checkpointing"]
        if checkpointing:  # true, or N: every N-th layer
            every = 1 if checkpointing is True else int(checkpointing)
            enable_activation_checkpointing(self.model, every_n_layers=every)
        compile_model(self.model, str(self.speed["compile"]))
        strategy = self.trainer.strategy if self._trainer is not None else None
        if isinstance(strategy, ModelParallelStrategy):
            precision = str(self.trainer.precision)
            shard_model(self.model, self.device_mesh["data_parallel"],
                        param_dtype=torch.bfloat16 if precision == "bf16-mixed" else None)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, T, vocab)``; packed batches attend within their ``segment_ids`` only."""
        return self._run(input_ids, segment_ids, position_ids, hidden=False)

    def _run(self, input_ids: torch.Tensor, segment_ids: torch.Tensor | None, position_ids: torch.Tensor | None,
             hidden: bool) -> torch.Tensor:
        """Logits, or (``hidden``) the final normed hidden states ``(B, T, d)`` with no logits computed. Always
        through the model's own forward, so FSDP2's root hooks gather the embedding and LM head."""
        if segment_ids is None:
            inputs = {"input_ids": input_ids, "position_ids": position_ids}
        else:
            inputs = packed_model_inputs(input_ids, segment_ids, position_ids,
                                         getattr(self.model.config, "_attn_implementation", "sdpa"))
        if hidden:
            out = self.model(**inputs, use_cache=False, output_hidden_states=[-1],
                             logits_to_keep=torch.empty(0, dtype=torch.long, device=input_ids.device))
            return out.hidden_states[-1].view(*input_ids.shape, -1)
        return self.model(**inputs, use_cache=False).logits.view(*input_ids.shape, -1)

    def _outputs(self, batch: Mapping[str, Any], hidden: bool) -> torch.Tensor:
        """The batch's logits, or (``hidden``) final hidden states."""
        return self._run(batch["input_ids"], batch.get("segment_ids"), batch.get("position_ids"), hidden=hidden)

    def _lm_head_weight(self) -> torch.Tensor:
        return self.model.lm_head.weight

    def _loss(self, batch: Mapping[str, Any], reduction: str = "mean") -> torch.Tensor:
        if self.speed["loss"] == "chunked":
            return chunked_next_token_loss(self._outputs(batch, hidden=True), self._lm_head_weight(), batch["labels"],
                                           int(self.speed["loss_chunk_tokens"]), reduction)
        return next_token_loss(self._outputs(batch, hidden=False), batch["labels"], reduction)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        # the LR this step's update uses (the scheduler advances after the optimizer step)
        groups = self.optimizers().param_groups
        self.log("train/lr", groups[0]["lr"], on_step=True)
        for group in groups[1:]:
            if group.get("name", "base") != "base" and group["weight_decay"]:  # one entry per named group
                self.log(f"train/lr/{group['name']}", group["lr"], on_step=True)
        # tokens after this optimizer step; logged here (not in on_train_batch_end, which runs after the
        # checkpoint callback) so a checkpoint's pending row holds it
        self.log("train/tokens_seen", float((self.global_step + 1) * self.tokens_per_step), on_step=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        # per domain: summed NLL (nats), target tokens, target UTF-8 bytes
        self._val_sums = torch.zeros(len(self.domains), 3, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        token_loss = self._loss(batch, reduction="none")
        per_seq = token_loss.view(batch["labels"].shape).sum(dim=1).double()
        counts = (batch["labels"] != IGNORE_INDEX).sum(dim=1).double()
        self._val_sums[:, 0].index_add_(0, batch["domain"], per_seq)
        self._val_sums[:, 1].index_add_(0, batch["domain"], counts)
        if "n_bytes" in batch:
            self._val_sums[:, 2].index_add_(0, batch["domain"], batch["n_bytes"].double())

    def on_validation_epoch_end(self) -> None:
        sums = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
        metrics = {}
        for i, domain in enumerate(self.domains):
            if sums[i, 1] > 0:
                metrics[f"val/loss/{domain}"] = float(sums[i, 0] / sums[i, 1])
            if sums[i, 2] > 0:
                metrics[f"val/bpb/{domain}"] = float(sums[i, 0] / sums[i, 2] / math.log(2))
        total = sums.sum(dim=0)
        mean_nll = float(total[0] / total[1])
        metrics["val/loss"] = mean_nll
        metrics["val/ppl"] = math.exp(min(mean_nll, 50.0))
        if total[2] > 0:  # bits per byte: comparable across tokenizers (the curation ablation's metric)
            metrics["val/bpb"] = float(total[0] / total[2] / math.log(2))
        self.log_dict(metrics, sync_dist=False)  # already reduced across ranks above

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip here, not via the Trainer: Lightning refuses Trainer clipping with fused AdamW."""
        max_norm = self.optimizer_cfg.get("grad_clip")
        if max_norm:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(max_norm), foreach=True)
            self.log("train/grad_norm", norm.full_tensor() if hasattr(norm, "full_tensor") else norm, on_step=True)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.optimizer_cfg
        optimizer = build_adamw(self.model, lr=cfg["lr"], weight_decay=cfg["weight_decay"],
                                betas=cfg["betas"], eps=cfg["eps"], lr_groups=cfg.get("lr_groups"),
                                # fused AdamW skips Lightning's fp16 grad unscaling: never with 16-mixed
                                fused=False if str(self.trainer.precision) == "16-mixed" else cfg.get("fused"))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        # Plain tensors and numbers only: Lightning loads checkpoints with weights_only=True.
        checkpoint["rng"] = {"python": random.getstate(),
                             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
                             "torch": torch.get_rng_state(),
                             "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
        row = pending_log_row(self.trainer)
        if row is not None:
            checkpoint[PENDING_ROW_KEY] = row

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng = checkpoint.get("rng")
        if rng is None:
            return
        random.setstate(rng["python"])
        kind, keys, pos, has_gauss, cached = rng["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])


class VisionLanguageModule(CausalLMModule):
    """The same training loop for :class:`~infir.models.vlm.model.VisionLanguageModel`: batches also carry
    ``pixel_values`` (none for a text-only batch), ``image_counts`` and ``sample_ids`` (named in count errors)."""

    def _outputs(self, batch: Mapping[str, Any], hidden: bool) -> torch.Tensor:
        return self.model(batch["input_ids"], batch.get("attention_mask"), batch.get("position_ids"),
                          pixel_values=batch.get("pixel_values"), image_counts=batch.get("image_counts"),
                          sample_ids=batch.get("sample_ids"), hidden=hidden)

    def _lm_head_weight(self) -> torch.Tensor:
        return self.model.language_model.lm_head.weight
