"""What one training phase inherits from the previous one: its weights and, for annealing, its LR.

Annealing continues a pre-trained model and decays the learning rate from where pre-training left
it (``phase.optimizer.lr: inherit``) to a floor (``phase.schedule.min_lr``): OLMo-style linear decay
from the inherited LR, or a WSD run's decay branch. Every export records the LR it ended at in
``infir_training.json`` so the next phase can read it without the optimizer state.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

TRAINING_STATE_FILE = "infir_training.json"
INHERIT = "inherit"


def write_training_state(out_dir: Path, state: Mapping[str, Any]) -> None:
    """Record phase, final LR and progress beside an HF export."""
    (out_dir / TRAINING_STATE_FILE).write_text(json.dumps(dict(state), indent=2))


def inherited_lr(init_from: str) -> float:
    """The LR the run behind ``init_from`` ended at (``hf:<dir>`` export or ``ckpt:<path>``)."""
    if init_from.startswith("hf:"):
        path = Path(init_from[3:]) / TRAINING_STATE_FILE
        if not path.is_file():
            raise ValueError(f"phase.optimizer.lr=inherit: {path} is missing (the HF directory was not exported by "
                             f"infir, e.g. a Llama-3.2 download); give phase.optimizer.lr a number instead")
        return float(json.loads(path.read_text())["final_lr"])
    if init_from.startswith("ckpt:"):
        state = torch.load(init_from[5:], map_location="cpu", weights_only=True, mmap=True)
        try:
            return float(state["lr_schedulers"][0]["_last_lr"][0])
        except (KeyError, IndexError) as err:
            raise ValueError(f"phase.optimizer.lr=inherit: no LR scheduler state in {init_from[5:]}") from err
    raise ValueError(f"phase.optimizer.lr=inherit needs phase.init_from=hf:<dir> or ckpt:<path>, got {init_from!r}")


def resolve_phase_lr(phase_cfg: Mapping[str, Any]) -> tuple[float, float]:
    """(peak LR, floor as a ratio of it) for this phase, with ``inherit`` and an absolute ``min_lr`` resolved."""
    lr_value = phase_cfg["optimizer"]["lr"]
    lr = inherited_lr(str(phase_cfg["init_from"])) if lr_value == INHERIT else float(lr_value)
    if lr <= 0:
        raise ValueError(f"phase.optimizer.lr must be > 0, got {lr}")
    schedule = phase_cfg["schedule"]
    min_lr = schedule.get("min_lr")
    if min_lr is None:
        return lr, float(schedule["min_lr_ratio"])
    if not 0 <= float(min_lr) <= lr:
        raise ValueError(f"phase.schedule.min_lr={min_lr} must be in [0, the phase's LR {lr}]")
    return lr, float(min_lr) / lr


def continued_tokenizer_cfg(tokenizer_cfg: Mapping[str, Any], init_from: str) -> dict[str, Any]:
    """A phase that continues a model keeps that model's tokenizer unless ``tokenizer.path`` says otherwise.

    ``hf:<dir>`` exports carry their tokenizer; a ``ckpt:`` is read with its run's ``run_plan.json``.
    Training a fresh BPE on the new phase's text would silently re-map every token id.
    """
    cfg = dict(tokenizer_cfg)
    if cfg.get("path"):
        return cfg
    if init_from.startswith("hf:"):
        cfg["path"] = init_from[3:]
    elif init_from.startswith("ckpt:"):
        cfg["path"] = str(checkpoint_tokenizer_dir(Path(init_from[5:])))
    return cfg


def apply_trainable(model: torch.nn.Module, patterns: list[str]) -> int:
    """Freeze every parameter whose name matches none of ``phase.trainable``'s glob patterns.

    ``["*"]`` trains everything; e.g. ``["model.embed_tokens.*", "lm_head.*"]`` trains only the
    embeddings. Returns the number of trainable parameters; none at all is an error naming the key.
    """
    trainable = 0
    for name, param in model.named_parameters():
        param.requires_grad_(any(fnmatch.fnmatchcase(name, p) for p in patterns))
        trainable += param.numel() if param.requires_grad else 0
    if trainable == 0:
        raise ValueError(f"phase.trainable={patterns} matches no parameter (names look like "
                         f"{next(iter(dict(model.named_parameters())))!r})")
    if patterns != ["*"]:
        log.info("phase.trainable=%s: %d trainable parameters", patterns, trainable)
    return trainable


def checkpoint_tokenizer_dir(checkpoint: Path) -> Path:
    """The tokenizer a checkpoint's run trained with, from ``<run>/run_plan.json`` (``train.py`` writes it)."""
    plan = checkpoint.parent.parent / "run_plan.json"
    if not plan.is_file():
        raise FileNotFoundError(f"{checkpoint}: cannot find its run's tokenizer ({plan} is missing); "
                                f"set tokenizer.path or use the run's hf_export")
    return Path(json.loads(plan.read_text())["tokenizer"])
