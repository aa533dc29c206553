"""Run-directory plumbing: resume discovery, CSV rewind, the persistent W&B id.

A run directory is deterministic for a given experiment name and overrides,
so re-running the same command after a kill finds its own checkpoints.
"""

from __future__ import annotations

import csv
import fcntl
import logging
import os
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

def local_rank() -> int:
    """Rank known before Lightning starts: its launcher exports it to the worker processes."""
    return int(os.environ.get("LOCAL_RANK", 0)) + int(os.environ.get("NODE_RANK", 0))


def resume_checkpoint(resume: str, checkpoint_dir: Path) -> Path | None:
    """``auto``: the run's newest checkpoint if any; ``never``: none (refuses a dir with checkpoints);
    anything else: a checkpoint path that must exist.

    Newest by modification time, not ``last.ckpt`` by name: a kill between writing a
    periodic checkpoint and refreshing ``last.ckpt`` leaves the periodic one newer.
    Checkpoints are written atomically, so every file present is complete.
    """
    existing = sorted(checkpoint_dir.glob("*.ckpt"), key=lambda p: p.stat().st_mtime) \
        if checkpoint_dir.is_dir() else []
    if resume == "auto":
        return existing[-1] if existing else None
    if resume == "never":
        if existing:
            raise FileExistsError(f"resume=never but {checkpoint_dir} holds checkpoints of an earlier run; "
                                  "use resume=auto to continue it or a different name= to start afresh")
        return None
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"resume={resume}: no such checkpoint file")
    return path


def checkpoint_step(path: Path) -> int:
    """A checkpoint's global step, read with mmap so weights and optimizer state are not loaded."""
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])


def last_logged(metrics_csv: Path, key: str) -> float:
    """The last value of ``key`` in a run's CSV (NaN when there is none): a finished run's result."""
    if not metrics_csv.is_file():
        return float("nan")
    with metrics_csv.open(newline="") as f:
        values = [row[key] for row in csv.DictReader(f) if row.get(key)]
    return float(values[-1]) if values else float("nan")


def rewind_csv(metrics_csv: Path, last_step: int) -> int:
    """Drop rows logged after ``last_step`` (by a run killed after its last checkpoint); returns rows dropped."""
    if not metrics_csv.is_file():
        return 0
    with metrics_csv.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames or [], list(reader)
    kept = [r for r in rows if r.get("step") in (None, "") or int(float(r["step"])) <= last_step]
    if len(kept) != len(rows):
        tmp = metrics_csv.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, metrics_csv)
    return len(rows) - len(kept)


def wandb_run_id(run_dir: Path) -> str:
    """The W&B id of this run directory, created once, so a resumed run continues the same W&B run."""
    path = run_dir / "wandb_run_id"
    if path.is_file():
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
