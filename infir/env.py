"""Process-level environment fixes that must be in place before heavy imports.

The torchvision op guard (torchvision's PyPI CUDA build on the CPU torch wheel, DESIGN.md §5) lives
in its own small distribution, ``packaging/torchvision_guard``, because it has to run at interpreter
start-up for processes that never import infir (plain ``transformers`` loading our export, lm-eval, a
notebook). requirements.txt installs it; importing infir installs its import hook too, for
interpreters started without site-packages' .pth files (``python -S``). The hook is lazy: the guard
(and torch) load only when something first looks for torchvision, so ``import infir`` stays cheap.
"""

from __future__ import annotations

import os

try:
    from infir_torchvision_guard import install_import_hook, install_torchvision_op_guard
except ImportError as error:  # an environment made before the guard became its own distribution
    raise ImportError("infir needs the infir-torchvision-guard package: run `pip install -r requirements.txt` "
                      "from the repository root") from error

__all__ = ["configure_offline_defaults", "install_import_hook", "install_torchvision_op_guard"]


def configure_offline_defaults() -> None:
    """Default to offline W&B and HF hub unless the user said otherwise."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")


install_import_hook()
