"""Export the trained model as a Hugging Face directory the next phase or eval can load."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from transformers import PreTrainedTokenizerBase


def export_hf(trainer: L.Trainer, module: L.LightningModule, tokenizer: PreTrainedTokenizerBase,
              out_dir: Path) -> Path | None:
    """``save_pretrained`` model + tokenizer on rank 0; every rank must call (FSDP gathers weights)."""
    state = trainer.strategy.lightning_module_state_dict()  # full, unsharded weights
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
    return out_dir
