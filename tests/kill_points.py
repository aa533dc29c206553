"""A Lightning callback that SIGKILLs its own process group at one exact point of a run, once.

Tests add it with ``+callbacks.kill={...}`` (``train.py`` instantiates every ``callbacks`` node), so a
kill lands deterministically, e.g. after a checkpoint but before that step's validation, which
polling for files from outside cannot guarantee. The marker file makes it fire only on the first
attempt, so the resumed run can be started with the identical command line (same run dir).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import lightning as L

HOOKS = ("train_batch_end", "checkpoint_written", "validation_start")


class KillAt(L.Callback):
    """``kill -9`` of the whole process group (W&B's service included) at ``hook`` of optimizer step ``step``.

    Lightning runs checkpoint callbacks last, so at ``train_batch_end`` of a checkpoint step the
    checkpoint is not written yet; at ``validation_start`` of that step it is. ``checkpoint_written``:
    as soon as the step's first checkpoint file is complete, before Lightning logs that step's metrics
    (what polling for ``step*.ckpt`` from outside and killing hits).
    """

    def __init__(self, step: int, hook: str, marker: str) -> None:
        if hook not in HOOKS:
            raise ValueError(f"hook must be one of {HOOKS}, got {hook!r}")
        self.step, self.hook, self.marker = int(step), hook, Path(marker)

    def _maybe_kill(self, trainer: L.Trainer, hook: str) -> None:
        if hook == self.hook and trainer.global_step == self.step and not self.marker.exists():
            self.marker.write_text(f"killed at {hook} of step {self.step}\n")
            os.killpg(os.getpgrp(), signal.SIGKILL)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._maybe_kill(trainer, "train_batch_end")
        if self.hook == "checkpoint_written" and trainer.global_step == self.step:
            io = trainer.strategy.checkpoint_io
            save = io.save_checkpoint

            def save_then_kill(*save_args: Any, **save_kwargs: Any) -> None:
                save(*save_args, **save_kwargs)
                self._maybe_kill(trainer, "checkpoint_written")

            io.save_checkpoint = save_then_kill  # the checkpoint callback runs after this one

    def on_validation_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.state.fn == "fit":  # not the step-0 baseline or a re-run validation outside fit
            self._maybe_kill(trainer, "validation_start")
