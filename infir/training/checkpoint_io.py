"""Checkpoints written so that a kill at any moment leaves either the old file or the complete new one.

Lightning's default writer stages the file in ``$TMPDIR`` and moves it; across filesystems that move is a
copy, so a kill mid-copy leaves a truncated ``step*.ckpt`` that ``resume=auto`` would pick, and on one
filesystem it leaves a temp file nothing removes. Here the checkpoint goes through
:func:`infir.atomic_files.atomic_output` with ``durable=True``: staged beside the target, fsynced, renamed
over it, the directory fsynced. A temp file left by a kill is removed by the next run
(:func:`infir.atomic_files.remove_stale_temp_files`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH

from infir.atomic_files import atomic_output


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a sibling temp file, fsync, rename: no reader ever sees a partial ``*.ckpt``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options, got {storage_options!r}")
        if "://" in str(path):  # remote storage: fsspec's own transaction, nothing local to rename
            super().save_checkpoint(checkpoint, path)
            return
        with atomic_output(Path(path), durable=True) as f:
            torch.save(checkpoint, f)
