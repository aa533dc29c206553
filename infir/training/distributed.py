"""Runs over several processes and nodes: one run directory and resume point for every rank, and a checkpoint
saved on one world size resumed on another.

The run directory is a function of the command line and the launch directory (conf/hydra/default.yaml), so
every rank of a torchrun or srun job computes the same path by itself; only rank zero locks it, writes logs,
checkpoints and exports and creates the W&B run. :class:`SameRunOnEveryRank` checks at the first collective
that every rank did arrive at the same directory and checkpoint and sees rank zero's files (a node launched
from another directory, or without the shared filesystem, fails at once instead of training apart).
:class:`ResumeOnAnyWorldSize` makes Lightning's micro-batch counters of a checkpoint match this run's
gradient accumulation (global batch / (micro batch x world size)): the data modules already resume on any
world size from the optimizer step alone.
"""

from __future__ import annotations

import logging
import socket
import uuid
from pathlib import Path
from typing import Any

import lightning as L
import torch.distributed as dist
from lightning.pytorch.plugins.environments import SLURMEnvironment

log = logging.getLogger(__name__)

WORLD_KEY = "infir_world"  # checkpoint key: world size and accumulation it was saved with
_TOKEN_PREFIX = ".rank0-"  # a file rank zero creates in the run dir for the other ranks to find


def cluster_plugins() -> list[Any]:
    """Trainer plugins for the cluster Lightning detects: in a Slurm job started with srun, its SLURMEnvironment
    without auto-requeue. Lightning's requeue saves ``hpc_ckpt_*.ckpt`` beside our checkpoints and loads it on
    the next start whatever ``resume`` says, so the run would restart its history at step 0 while training
    from the middle; a resubmitted (or ``#SBATCH --requeue``) job continues through ``resume=auto`` instead.
    Torchrun (TorchElasticEnvironment) and Lightning's own launcher need nothing."""
    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


class SameRunOnEveryRank(L.Callback):
    """Fail on every rank, naming the hosts, when the ranks of one job disagree about the run directory or the
    checkpoint they resume from, or a rank cannot see the files rank zero writes there (no shared filesystem)."""

    def __init__(self, run_dir: Path, resume_from: Path | None, resumed_step: int | None) -> None:
        self.run_dir, self.resume_from, self.resumed_step = Path(run_dir), resume_from, resumed_step
        self._checked = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._checked or trainer.world_size == 1 or not dist.is_available() or not dist.is_initialized():
            return
        self._checked = True
        # a file name no rank has looked up before: a network filesystem cannot answer from a stale cache
        token = f"{_TOKEN_PREFIX}{uuid.uuid4().hex}" if trainer.global_rank == 0 else None
        if token is not None:
            (self.run_dir / token).touch()
        mine = {"rank": trainer.global_rank, "host": socket.gethostname(), "run_dir": str(self.run_dir),
                "resume": None if self.resume_from is None else f"{self.resume_from} (step {self.resumed_step})",
                "token": token}
        everyone: list[Any] = [None] * trainer.world_size
        dist.all_gather_object(everyone, mine)
        zero = everyone[0]
        sees: list[Any] = [None] * trainer.world_size
        dist.all_gather_object(sees, (self.run_dir / zero["token"]).is_file())
        if token is not None:
            (self.run_dir / token).unlink(missing_ok=True)
        problems = [f"rank {r['rank']} on {r['host']}: run dir {r['run_dir']}, resuming {r['resume'] or 'nothing'}"
                    + ("" if ok else " (does not see rank 0's files there)")
                    for r, ok in zip(everyone, sees)
                    if (r["run_dir"], r["resume"]) != (zero["run_dir"], zero["resume"]) or not ok]
        if problems:
            raise RuntimeError(
                f"the ranks of this job disagree with rank 0 on {zero['host']} (run dir {zero['run_dir']}, resuming "
                f"{zero['resume'] or 'nothing'}): " + "; ".join(problems) + ". Launch every node from the same "
                "directory with the same arguments, on a filesystem all nodes share (paths.output_dir)")


class ResumeOnAnyWorldSize(L.Callback):
    """Resume a checkpoint saved with another world size (so another per-rank accumulation) exactly.

    Lightning restores its micro-batch counters as saved: after ``s`` optimizer steps with accumulation ``a``
    they read ``s * a``. With this run's accumulation ``b`` it would then close accumulation windows at the
    wrong micro-batches, validate off the interval and end its epoch (the run) early or late; the counters are
    shifted to ``s * b``. The data position needs nothing: both data modules continue from the optimizer step
    on any world size. FSDP2 sharded checkpoints still need the world size they were saved with.
    """

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[WORLD_KEY] = {"world_size": trainer.world_size,
                                 "accumulate_grad_batches": trainer.accumulate_grad_batches}

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        steps = int(checkpoint.get("global_step", 0))
        progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress")
        if not steps or progress is None:
            return
        saved = checkpoint.get(WORLD_KEY) or {}
        before = saved.get("accumulate_grad_batches")
        if before is None:  # a checkpoint made before this key: its counters are steps x accumulation
            before, rest = divmod(int(progress["total"]["ready"]), steps)
            if rest:
                raise ValueError(f"resume: cannot tell the gradient accumulation of a checkpoint at step {steps} "
                                 f"with {progress['total']['ready']} micro-batches; resume it on its own world size")
        now = trainer.accumulate_grad_batches
        if before == now:
            return
        shift = steps * (now - before)
        same_epoch = progress["current"]["ready"] == progress["total"]["ready"]
        for part in ("total", "current") if same_epoch else ("total",):
            for key, value in progress[part].items():
                progress[part][key] = max(0, int(value) + shift)
        if trainer.is_global_zero:
            log.info("resuming a checkpoint of %s (accumulation %d) on world size %d (accumulation %d): the same "
                     "global batches per optimizer step",
                     f"world size {saved['world_size']}" if "world_size" in saved else "another world size", before,
                     trainer.world_size, now)
