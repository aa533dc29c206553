"""Llama-style causal LM from config: built locally, never downloaded.

``init_from`` is separate from resume: ``scratch`` (random init from the config),
``hf:<dir>`` (a local HF directory, e.g. a copy of Llama-3.2-1B, as the released
InfiR models were continually pre-trained from it) or ``ckpt:<path>`` (weights
only from one of our Lightning checkpoints, optimizer state discarded).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

log = logging.getLogger(__name__)

_ARCH_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "rms_norm_eps", "tie_word_embeddings", "initializer_range",
              "max_position_embeddings")


def padded_vocab_size(tokenizer_size: int, multiple: int) -> int:
    """Round the embedding table up so matmuls tile well; extra rows are never produced."""
    return int(math.ceil(tokenizer_size / multiple) * multiple)


def resolve_attn_implementation(requested: str) -> str:
    """``auto`` picks flash-attention 2 on CUDA when installed, else PyTorch SDPA."""
    has_flash = importlib.util.find_spec("flash_attn") is not None
    if requested == "auto":
        return "flash_attention_2" if has_flash and torch.cuda.is_available() else "sdpa"
    if requested == "flash_attention_2" and not has_flash:
        raise ValueError("model.attn_implementation=flash_attention_2 but flash-attn is not installed "
                         "(pip install -r requirements-gpu.txt, or use sdpa)")
    if requested not in ("sdpa", "eager", "flash_attention_2", "flex_attention"):
        raise ValueError(f"model.attn_implementation: unknown value {requested!r}")
    return requested


def llama_config(model_cfg: Mapping[str, Any], vocab_size: int, bos_id: int | None, eos_id: int,
                 pad_id: int | None) -> LlamaConfig:
    """Translate our model config group into a ``LlamaConfig``."""
    if model_cfg["hidden_size"] % model_cfg["num_attention_heads"]:
        raise ValueError(f"model.hidden_size={model_cfg['hidden_size']} is not divisible by "
                         f"model.num_attention_heads={model_cfg['num_attention_heads']}")
    if model_cfg["num_attention_heads"] % model_cfg["num_key_value_heads"]:
        raise ValueError("model.num_attention_heads must be a multiple of model.num_key_value_heads")
    rope = dict(model_cfg.get("rope_scaling") or {"rope_type": "default"})
    rope["rope_theta"] = float(model_cfg["rope_theta"])
    config = LlamaConfig(vocab_size=vocab_size, rope_parameters=rope, bos_token_id=bos_id, eos_token_id=eos_id,
                         pad_token_id=pad_id, use_cache=False,
                         **{k: model_cfg[k] for k in _ARCH_KEYS})
    config._attn_implementation = resolve_attn_implementation(model_cfg.get("attn_implementation", "sdpa"))
    return config


def build_causal_lm(model_cfg: Mapping[str, Any], tokenizer_size: int, bos_id: int | None, eos_id: int,
                    pad_id: int | None, init_from: str = "scratch") -> LlamaForCausalLM:
    """Create the model and apply ``init_from``; fails fast naming ``init_from`` on a bad value."""
    attn = resolve_attn_implementation(model_cfg.get("attn_implementation", "sdpa"))
    if init_from.startswith("hf:"):
        path = Path(init_from[3:])
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"init_from={init_from}: no HF model directory (config.json) at {path}")
        model = LlamaForCausalLM.from_pretrained(str(path), local_files_only=True, attn_implementation=attn,
                                                 dtype=torch.float32)
        if model.config.vocab_size < tokenizer_size:
            raise ValueError(f"init_from={init_from}: model vocab {model.config.vocab_size} is smaller than the "
                             f"tokenizer's {tokenizer_size}; use the tokenizer the model was trained with")
        model.config.use_cache = False
        return model
    vocab = padded_vocab_size(tokenizer_size, int(model_cfg.get("vocab_multiple", 64)))
    model = LlamaForCausalLM(llama_config(model_cfg, vocab, bos_id, eos_id, pad_id))
    if init_from.startswith("ckpt:"):
        load_checkpoint_weights(model, init_from, tied=bool(model.config.tie_word_embeddings))
    elif init_from != "scratch":
        raise ValueError(f"init_from must be 'scratch', 'hf:<dir>' or 'ckpt:<path>', got {init_from!r}")
    return model


def load_checkpoint_weights(model: torch.nn.Module, init_from: str, tied: bool) -> None:
    """``init_from=ckpt:<path>``: the module weights of one of our Lightning checkpoints (optimizer state
    discarded), strictly: anything missing (but a tied ``lm_head``) or unexpected is an error naming both."""
    path = Path(init_from[5:])
    if path.is_dir():
        raise ValueError(f"init_from={init_from}: a sharded (trainer=fsdp2) checkpoint folder; start from the run's "
                         f"export instead: init_from=hf:<run dir>/hf_export")
    if not path.is_file():
        raise FileNotFoundError(f"init_from={init_from}: no checkpoint file at {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight") or not tied]
    if missing or unexpected:
        raise ValueError(f"init_from={init_from}: checkpoint does not match the model config "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Total and non-embedding parameter counts (tied weights counted once)."""
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight.numel()
    return {"total": total, "non_embedding": total - embed}


def training_flops_per_token(model: LlamaForCausalLM, seq_len: int) -> float:
    """6·N for the matmuls (lm_head included) + 12·L·d·T for attention (PaLM appendix B)."""
    c = model.config
    lm_head = c.vocab_size * c.hidden_size if c.tie_word_embeddings else 0  # else already counted
    n_matmul = count_parameters(model)["non_embedding"] + lm_head
    return 6.0 * n_matmul + 12.0 * c.num_hidden_layers * c.hidden_size * seq_len
