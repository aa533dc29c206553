"""``model.compile``: torch.compile of the whole model or of each decoder layer, in place.

``nn.Module.compile`` compiles a module's call without wrapping it, so parameter names, ``state_dict`` keys,
Lightning checkpoints, resume and the HF export are exactly those of the eager model. ``regional`` compiles
each decoder layer (they share one code object, so the first layer's graph serves all, and a 16-layer
model compiles about as fast as a 1-layer one); ``whole`` compiles the model (the training step always calls
it, for the chunked loss too), and may fuse more across layers but compiles longer and recompiles on any
shape change. Generation (the eval callback, the synthesis backends) runs
under :func:`eager_calls`: its one-token decode steps and growing KV cache would otherwise recompile.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from transformers.modeling_layers import GradientCheckpointingLayer

from infir.training.speed import COMPILE_MODES

log = logging.getLogger(__name__)


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks: transformers' decoder layers all derive from ``GradientCheckpointingLayer``."""
    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def compile_model(model: torch.nn.Module, mode: str) -> None:
    """Apply ``mode`` (``eager`` | ``whole`` | ``regional``) to ``model`` in place."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"model.compile must be one of {', '.join(COMPILE_MODES)}; got {mode!r}")
    if mode == "whole":
        model.compile()
        log.info("model.compile=whole: compiled %s", type(model).__name__)
    elif mode == "regional":
        layers = decoder_layers(model)
        if not layers:
            raise ValueError("model.compile=regional: the model has no transformers decoder layers to compile")
        for layer in layers:
            layer.compile()
        log.info("model.compile=regional: compiled %d decoder layers", len(layers))


@contextlib.contextmanager
def eager_calls() -> Iterator[None]:
    """Run compiled modules eagerly inside the block (``torch.compiler.set_stance('force_eager')``)."""
    with torch.compiler.set_stance("force_eager"):
        yield
