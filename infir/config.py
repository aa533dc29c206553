"""Config checks that must fail before any data is prepared or a model is built.

Hydra already rejects unknown group options; these checks catch bad values
(non-positive budgets and sizes, inconsistent batch shapes, missing paths)
with a message that names the offending key.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

_POSITIVE_INTS = ("data_mix.token_budget", "phase.seq_len", "phase.micro_batch_size", "phase.global_batch_size",
                  "model.hidden_size", "model.num_hidden_layers", "model.num_attention_heads",
                  "model.num_key_value_heads", "model.intermediate_size", "tokenizer.vocab_size",
                  "callbacks.checkpoint.every_n_train_steps", "trainer.val_check_interval")
_POSITIVE_FLOATS = ("phase.optimizer.lr",)  # or "inherit" (annealing: the previous phase's final LR)
_NON_NEGATIVE = ("phase.optimizer.weight_decay", "phase.optimizer.grad_clip")


class ConfigError(ValueError):
    """A config value is invalid; the message names the key."""


def _get(cfg: DictConfig, key: str):
    return OmegaConf.select(cfg, key, throw_on_missing=True)


def validate_config(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` naming the first bad key."""
    for key in _POSITIVE_INTS:
        value = _get(cfg, key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    for key in _POSITIVE_FLOATS:
        value = _get(cfg, key)
        if value == "inherit" and key == "phase.optimizer.lr":
            if not str(cfg.phase.init_from).startswith(("hf:", "ckpt:")):
                raise ConfigError("phase.optimizer.lr=inherit needs phase.init_from=hf:<dir> or ckpt:<path>")
            continue
        if not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{key} must be a positive number, got {value!r}")
    for key in _NON_NEGATIVE:
        value = _get(cfg, key)
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise ConfigError(f"{key} must be >= 0, got {value!r}")
    if cfg.phase.global_batch_size % cfg.phase.micro_batch_size:
        raise ConfigError(f"phase.global_batch_size={cfg.phase.global_batch_size} must be a multiple of "
                          f"phase.micro_batch_size={cfg.phase.micro_batch_size}")
    weights = cfg.data_mix.get("weights")
    if cfg.data_mix.get("kind") == "sft":
        if not isinstance(cfg.phase.get("epochs"), int) or cfg.phase.epochs < 1:
            raise ConfigError(f"phase.epochs must be a positive integer for SFT, got {cfg.phase.get('epochs')!r}")
    elif not weights or any(not isinstance(w, (int, float)) or w < 0 for w in weights.values()) \
            or sum(weights.values()) <= 0:
        raise ConfigError(f"data_mix.weights must be non-negative numbers with a positive sum, got "
                          f"{OmegaConf.to_container(weights)}")
    if cfg.modality.name != "text":
        raise ConfigError(f"modality={cfg.modality.name}: only the text modality is implemented so far")
    if cfg.tokenizer.path and not Path(cfg.tokenizer.path).is_dir():
        raise ConfigError(f"tokenizer.path: no such directory: {cfg.tokenizer.path}")
    init = str(cfg.phase.init_from)
    if init.startswith("hf:") and not (Path(init[3:]) / "config.json").is_file():
        raise ConfigError(f"phase.init_from={init}: no HF model directory (config.json) there")
    if init.startswith("ckpt:") and not Path(init[5:]).is_file():
        raise ConfigError(f"phase.init_from={init}: no such checkpoint file")
    if init != "scratch" and not init.startswith(("hf:", "ckpt:")):
        raise ConfigError(f"phase.init_from must be scratch, hf:<dir> or ckpt:<path>, got {init!r}")
    if cfg.resume not in ("auto", "never") and not Path(cfg.resume).is_file():
        raise ConfigError(f"resume must be auto, never or a checkpoint path; no file at {cfg.resume!r}")
