"""Export the trained model as a Hugging Face directory the next phase or eval can load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from transformers import PreTrainedTokenizerBase

from infir.training.phases import write_training_state
from infir.training.speed.fsdp2 import full_model_state_dict, is_sharded, unsharded_copy


def export_hf(trainer: L.Trainer, module: L.LightningModule, tokenizer: PreTrainedTokenizerBase,
              out_dir: Path, phase: str = "pretrain") -> Path | None:
    """``save_pretrained`` model + tokenizer on rank 0; every rank must call (FSDP gathers weights).

    Beside them, ``infir_training.json`` records the phase and the LR it ended at, which an
    annealing phase started from this export inherits.
    """
    if is_sharded(module.model):  # FSDP2: gather the shards, save a plain copy
        weights = full_model_state_dict(module.model)
        if not trainer.is_global_zero:
            return None
        model = unsharded_copy(module.model, weights, torch.device("cpu"))
    else:
        state = trainer.strategy.lightning_module_state_dict()  # single process or DDP: the full weights
        if not trainer.is_global_zero:
            return None
        weights = {k.removeprefix("model."): v.detach().cpu() for k, v in state.items() if k.startswith("model.")}
        model = module.model
    model.config.use_cache = True  # generation-ready; training ran without the KV cache
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    try:
        model.save_pretrained(str(out_dir), state_dict=weights)
    finally:
        model.config.use_cache = False
    tokenizer.save_pretrained(str(out_dir))
    write_training_state(out_dir, {"phase": phase, "final_lr": trainer.optimizers[0].param_groups[0]["lr"],
                                   "global_step": trainer.global_step})
    return out_dir


def export_vlm(trainer: L.Trainer, module: L.LightningModule, tokenizer: PreTrainedTokenizerBase, processor: Any,
               out_dir: Path, phase: str) -> Path | None:
    """The vision-language export (``infir.models.vlm.build.save_vlm``) plus the same training-state record."""
    from infir.models.vlm.build import save_vlm

    state = trainer.strategy.lightning_module_state_dict()
    if not trainer.is_global_zero:
        return None
    weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    lm = module.model.language_model
    lm.generation_config.eos_token_id = tokenizer.eos_token_id
    lm.generation_config.pad_token_id = tokenizer.pad_token_id
    lm.generation_config.bos_token_id = tokenizer.bos_token_id
    save_vlm(module.model, tokenizer, processor, out_dir, state_dict=weights)
    write_training_state(out_dir, {"phase": phase, "final_lr": trainer.optimizers[0].param_groups[0]["lr"],
                                   "global_step": trainer.global_step})
    return out_dir
