"""Checkpoints written so that a kill at any moment leaves either the old file or the complete new one.

Lightning's default writer stages the file in ``$TMPDIR`` and moves it; across filesystems that move is a
copy, so a kill mid-copy leaves a truncated ``step*.ckpt`` that ``resume=auto`` would pick, and on one
filesystem it leaves a temp file nothing removes. Here the bytes go to ``<target>.partial`` in the
target's own directory, are fsynced, and are renamed over the target (atomic within a filesystem);
the directory is fsynced so the rename survives a power loss. A ``.partial`` left by a kill is removed
by the next run (:func:`infir.training.run.remove_partial_checkpoints`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH

from infir.training.run import PARTIAL_SUFFIX


def partial_path(target: Path) -> Path:
    """Where the bytes of ``target`` are staged: beside it, under a name ``*.ckpt`` globs never match."""
    return target.with_name(target.name + PARTIAL_SUFFIX)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a sibling temp file, fsync, rename: no reader ever sees a partial ``*.ckpt``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options, got {storage_options!r}")
        if "://" in str(path):  # remote storage: fsspec's own transaction, nothing local to rename
            super().save_checkpoint(checkpoint, path)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = partial_path(target)
        with staged.open("wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(staged, target)
        _fsync_dir(target.parent)
