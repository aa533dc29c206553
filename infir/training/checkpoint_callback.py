"""Periodic checkpoints that a resumed run does not rewrite mid-step.

Lightning's ModelCheckpoint remembers the step it last saved only in memory (``_last_global_step_saved``
starts at 0 in every process). A run resumed at optimizer step N with gradient accumulation sees
``global_step == N`` again after its first micro-batch, so it saves ``step<N>.ckpt`` and ``last.ckpt`` a
second time — now holding a loop state half-way through step N+1's accumulation. Resuming from that
file shifts every later step's micro-batches (a run killed twice was no longer the uninterrupted one).
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class ResumeAwareModelCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that counts the step it resumed from as already saved."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._last_global_step_saved = max(self._last_global_step_saved, trainer.global_step)
