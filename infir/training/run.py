"""Run-directory plumbing: resume discovery, the metric history a resumed run keeps, the W&B id.

A run directory is deterministic for a given experiment name and overrides,
so re-running the same command after a kill finds its own checkpoints.
"""

from __future__ import annotations

import csv
import fcntl
import logging
import os
import pickle
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SHARDED_META_FILE = "meta.pt"  # Lightning's ModelParallelStrategy: the non-tensor part of a sharded checkpoint
# checkpoint key of the metrics row its own step logs after the checkpoint is written (pending_log_row)
PENDING_ROW_KEY = "infir_pending_log_row"


# What each launcher exports to its worker processes: torchrun (and torch.distributed) RANK, srun SLURM_PROCID,
# Lightning's own launcher LOCAL_RANK and NODE_RANK (node rank alone on a multi-node job it launches per node).
LAUNCHER_RANK_VARIABLES = ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK")


def launcher_rank() -> int:
    """0 for the job's rank-zero process, positive for every other one, known before Lightning starts.

    Rank zero is the process whose launcher variables are all 0 (or unset): on a second node torchrun's
    LOCAL_RANK is 0 again and only RANK tells, srun sets SLURM_PROCID alone, and processes Lightning spawns
    inside one Slurm task share SLURM_PROCID=0 and differ in LOCAL_RANK. The value is not the global rank
    (the Trainer's ``global_rank`` is): it only has to be 0 exactly once per job.
    """
    return max(int(os.environ.get(key) or 0) for key in LAUNCHER_RANK_VARIABLES)


local_rank = launcher_rank  # the older name (before multi-node runs, it missed a second node's rank zero)


def readable_checkpoint_step(path: Path) -> int | None:
    """The checkpoint's global step, or None when the file cannot be read as a checkpoint (cut short, not one)."""
    try:
        return checkpoint_step(path)
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, pickle.UnpicklingError):
        return None


def resume_checkpoint(resume: str, checkpoint_dir: Path) -> tuple[Path, int] | None:
    """(checkpoint, its step) to continue from. ``auto``: the run's newest readable checkpoint, if any;
    ``never``: none (refuses a dir with checkpoints); anything else: a checkpoint path that must exist.

    Newest by modification time, not ``last.ckpt`` by name: a kill between writing a periodic
    checkpoint and refreshing ``last.ckpt`` leaves the periodic one newer. Checkpoints are written
    atomically (:mod:`infir.training.checkpoint_io`), but one cut short by an older writer or a full
    disk is skipped with a warning naming it, so the run continues from the previous complete one.
    """
    existing = sorted(checkpoint_dir.glob("*.ckpt"), key=lambda p: p.stat().st_mtime) \
        if checkpoint_dir.is_dir() else []
    if resume == "auto":
        for path in reversed(existing):
            step = readable_checkpoint_step(path)
            if step is not None:
                return path, step
            log.warning("skipping unreadable checkpoint %s (cut short by a kill or a full disk?); "
                        "resuming from the previous one", path)
        return None
    if resume == "never":
        if existing:
            raise FileExistsError(f"resume=never but {checkpoint_dir} holds checkpoints of an earlier run; "
                                  "use resume=auto to continue it or a different name= to start afresh")
        return None
    path = Path(resume)
    if not path.exists():
        raise FileNotFoundError(f"resume={resume}: no such checkpoint file or sharded checkpoint folder")
    step = readable_checkpoint_step(path)
    if step is None:
        raise ValueError(f"resume={resume}: not a readable checkpoint (cut short?); pick another one")
    return path, step


def checkpoint_state_file(path: Path) -> Path:
    """The file holding a checkpoint's step and loop state: the checkpoint itself, or for a sharded (FSDP2)
    checkpoint folder its ``meta.pt``, valid only once the shards' ``.metadata`` (written last) exists."""
    if not path.is_dir():
        return path
    if not (path / ".metadata").is_file():
        raise OSError(f"{path}: sharded checkpoint without .metadata (cut short)")
    return path / SHARDED_META_FILE


def checkpoint_step(path: Path) -> int:
    """A checkpoint's global step, read with mmap so weights and optimizer state are not loaded."""
    import torch

    return int(torch.load(checkpoint_state_file(path), map_location="cpu", weights_only=True,
                          mmap=not path.is_dir())["global_step"])


def last_logged(metrics_csv: Path, key: str) -> float:
    """The last value of ``key`` in a run's CSV (NaN when there is none): a finished run's result."""
    if not metrics_csv.is_file():
        return float("nan")
    with metrics_csv.open(newline="") as f:
        values = [row[key] for row in csv.DictReader(f) if row.get(key)]
    return float(values[-1]) if values else float("nan")


def validation_logged_after_checkpoint(step: int, val_check_interval: int, max_steps: int) -> bool:
    """Whether the run validates at ``step`` after saving that step's checkpoint.

    Periodic checkpoints are written at the end of the optimizer step, before the validation Lightning
    runs at the same step, and the final validation follows the final checkpoint. A run resumed from
    such a checkpoint owes that validation: Lightning's restart skips it.
    """
    return step > 0 and (step % val_check_interval == 0 or step >= max_steps)


def kept_history(metrics_csv: Path, step: int, redo_prefix: str | None) -> tuple[list[dict[str, str]], int]:
    """(rows a run resumed at ``step`` keeps, rows dropped) of its ``metrics.csv``.

    Rows are logged at the optimizer step; those after the checkpoint are logged again by the resumed
    run and are dropped, as are the rows at ``step`` whose keys start with ``redo_prefix`` (a validation
    the resumed run re-runs).
    """
    if not metrics_csv.is_file():
        return [], 0
    with metrics_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))

    def keep(row: dict[str, str]) -> bool:
        if row.get("step") in (None, ""):
            return True
        row_step = int(float(row["step"]))
        redone = redo_prefix is not None and any(k.startswith(redo_prefix) and v for k, v in row.items())
        return row_step < step or (row_step == step and not redone)

    kept = [r for r in rows if keep(r)]
    return kept, len(rows) - len(kept)


def wandb_run_id(run_dir: Path, continuing: bool) -> str:
    """The W&B id of this run directory, so a resumed run continues the same W&B run.

    A run that starts from step 0 (no checkpoint to continue) gets a fresh id: none of an earlier
    attempt's history is kept (its CSV starts over too), so its W&B run is not continued either.
    """
    path = run_dir / "wandb_run_id"
    if continuing and path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    path.write_text(run_id)
    return run_id


def lock_run_dir(run_dir: Path):
    """Hold an exclusive lock on the run dir for the life of the process.

    Two processes training into one run dir would interleave checkpoints and logs;
    the second one fails fast instead. The OS drops the lock when the holder dies
    (also on kill -9), so a resume never finds a stale lock.
    """
    handle = (run_dir / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RuntimeError(f"another process is already training in {run_dir}; wait for it or kill it") from None
    return handle


def pending_log_row(trainer: Any) -> dict[str, str] | None:
    """The CSV row Lightning is about to log for the optimizer step being checkpointed, or None.

    Lightning runs the checkpoint callback before it writes that step's metrics, so a kill right after
    the checkpoint lands (the moment ``step*.ckpt`` appears) would lose the row while the resumed run
    starts after the step; the checkpoint carries it instead (:func:`restore_pending_row`). Reads the
    metrics Lightning's logger connector will log (a private attribute: lightning is pinned, and the
    kill test in tests/test_train_e2e.py fails if this stops matching what is logged).
    """
    if trainer is None or trainer.state.stage is None or trainer.state.stage.value != "train":
        return None
    connector = trainer._logger_connector
    if not connector.should_update_logs:
        return None
    metrics = {k: float(v) for k, v in connector.metrics["log"].items()}
    if not metrics:
        return None
    return {"epoch": str(trainer.current_epoch), "step": str(trainer.global_step),
            **{k: repr(v) for k, v in metrics.items()}}


def checkpoint_pending_row(path: Path) -> dict[str, str] | None:
    """The pending row stored in a checkpoint (mmap: weights are not read)."""
    import torch

    return torch.load(checkpoint_state_file(path), map_location="cpu", weights_only=True,
                      mmap=not path.is_dir()).get(PENDING_ROW_KEY)


def restore_pending_row(rows: list[dict[str, str]], pending: dict[str, str] | None) -> list[dict[str, str]]:
    """``rows`` plus the checkpoint's pending row when the kill came before it was logged."""
    if pending is None:
        return rows
    step = pending["step"]
    logged = any(row.get("step") == step and any(v and k.startswith("train/") for k, v in row.items())
                 for row in rows)
    return rows if logged else [*rows, pending]
