"""Load a model to evaluate: an HF directory (our exports, or any local Llama) or one of our checkpoints.

A Lightning checkpoint alone does not say the architecture or the tokenizer, so a checkpoint is read
with its run directory: ``<run>/resolved_config.yaml`` (the model and phase config) and
``<run>/run_plan.json`` (the tokenizer the run trained with), both written by ``train.py``; an SFT
run's tokenizer gets the chat template it was trained with.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from infir.models.causal_lm import build_causal_lm
from infir.models.chat_template import ensure_chat_template
from infir.models.tokenizer import load_tokenizer
from infir.training.phases import checkpoint_tokenizer_dir

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in _DTYPES:
        raise ValueError(f"dtype must be auto or one of {sorted(_DTYPES)}, got {name!r}")
    return _DTYPES[name]


def _from_checkpoint(path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    config_path = path.parent.parent / "resolved_config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"model={path}: a checkpoint is loaded with its run directory, but {config_path} "
                                f"is missing (evaluate the run's hf_export instead)")
    cfg = OmegaConf.load(config_path)
    tokenizer = load_tokenizer(checkpoint_tokenizer_dir(path))
    if cfg.phase.name == "sft":
        tokenizer = ensure_chat_template(tokenizer)
    model = build_causal_lm(cfg.model, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id,
                            tokenizer.pad_token_id, init_from=f"ckpt:{path}")
    return model, tokenizer


def load_model(path: str | Path, device: str = "auto", dtype: str = "auto") -> tuple[PreTrainedModel,
                                                                                       PreTrainedTokenizerBase]:
    """(model in eval mode on ``device``, tokenizer) from an HF directory or a ``.ckpt`` file."""
    path = Path(path).expanduser()
    target = resolve_device(device)
    if path.is_file() and path.suffix == ".ckpt":
        model, tokenizer = _from_checkpoint(path)
    elif (path / "config.json").is_file():
        tokenizer = load_tokenizer(path)
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    else:
        raise FileNotFoundError(f"model={path}: not an HF model directory (no config.json) or a .ckpt file")
    model = model.to(device=target, dtype=_dtype(dtype, target)).eval()
    return model, tokenizer
