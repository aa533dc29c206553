"""Load a model to evaluate: an HF directory (our exports, or any local Llama) or one of our checkpoints.

A Lightning checkpoint alone does not say the architecture or the tokenizer, so a checkpoint is read
with its run directory: ``<run>/resolved_config.yaml`` (the model and phase config) and
``<run>/run_plan.json`` (the tokenizer the run trained with), both written by ``train.py``; an SFT
run's tokenizer gets the chat template it was trained with.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch, transformers and the training code load in seconds: only when a model is loaded
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_DTYPES = ("float32", "bfloat16", "float16")


def resolve_device(device: str) -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _dtype(name: str, device: torch.device) -> torch.dtype:
    import torch

    if check_dtype(name) == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def check_dtype(name: str) -> str:
    if name != "auto" and name not in _DTYPES:
        raise ValueError(f"dtype must be auto or one of {list(_DTYPES)}, got {name!r}")
    return name


def check_model_path(path: str | Path) -> Path:
    """``path`` if it is an HF model directory or a checkpoint inside its run directory; else one clear error.

    Cheap (no imports, no reads), so the eval app calls it before building the suite or loading anything.
    """
    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".ckpt":
        config_path = path.parent.parent / "resolved_config.yaml"
        if not config_path.is_file():
            raise FileNotFoundError(f"model={path}: a checkpoint is loaded with its run directory, but "
                                    f"{config_path} is missing (evaluate the run's hf_export instead)")
        return path
    if (path / "config.json").is_file() or (path / "infir_vlm.json").is_file():  # HF or vision-language export
        return path
    what = "does not exist" if not path.exists() else "is not an HF model directory (no config.json) or a .ckpt file"
    raise FileNotFoundError(f"model={path}: {what}")


def _from_checkpoint(path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from omegaconf import OmegaConf

    from infir.models.causal_lm import build_causal_lm
    from infir.models.chat_template import ensure_chat_template
    from infir.models.tokenizer import load_tokenizer
    from infir.training.phases import checkpoint_tokenizer_dir

    cfg = OmegaConf.load(path.parent.parent / "resolved_config.yaml")
    tokenizer = load_tokenizer(checkpoint_tokenizer_dir(path))
    if cfg.phase.name == "sft":
        tokenizer = ensure_chat_template(tokenizer)
    model = build_causal_lm(cfg.model, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id,
                            tokenizer.pad_token_id, init_from=f"ckpt:{path}")
    return model, tokenizer


def load_model(path: str | Path, device: str = "auto", dtype: str = "auto") -> tuple[PreTrainedModel,
                                                                                       PreTrainedTokenizerBase]:
    """(model in eval mode on ``device``, tokenizer) from an HF directory or a ``.ckpt`` file."""
    import torch
    from transformers import AutoModelForCausalLM

    from infir.models.tokenizer import load_tokenizer

    path = check_model_path(path)
    target = resolve_device(device)
    if path.suffix == ".ckpt" and path.is_file():
        model, tokenizer = _from_checkpoint(path)
    else:
        tokenizer = load_tokenizer(path)
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    model = model.to(device=target, dtype=_dtype(dtype, target)).eval()
    return model, tokenizer
