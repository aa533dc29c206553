"""Process-level environment fixes that must run before heavy imports.

Why this exists: torchvision 0.28.0 on PyPI is a CUDA build. On the CPU-only
torch wheel its C++ extension does not register ``torchvision::nms``/``qnms``,
and torchvision's Python layer (imported by timm and open_clip) fails at import
with "operator torchvision::nms does not exist". Declaring the two missing
operator schemas lets the import succeed; the compiled ops stay unavailable
(decode images with PIL, do NMS elsewhere) and calling them raises a clear error.
"""

from __future__ import annotations

import os

_TORCHVISION_MISSING_OPS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_guard_library = None  # kept alive: dropping the Library object unregisters the schemas


def install_torchvision_op_guard() -> bool:
    """Declare torchvision's missing op schemas on CPU torch; True if it had to."""
    global _guard_library
    import torch

    if _guard_library is not None:
        return True
    try:
        torch.ops.torchvision.nms  # noqa: B018 - attribute access is the probe
        return False
    except (AttributeError, RuntimeError):
        pass
    _guard_library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _TORCHVISION_MISSING_OPS:
        try:
            _guard_library.define(schema)
        except RuntimeError:  # already defined by a partially loaded extension
            continue
    return True


def configure_offline_defaults() -> None:
    """Default to offline W&B and HF hub unless the user said otherwise."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")


install_torchvision_op_guard()
