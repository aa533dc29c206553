"""Resume plumbing without a training run: atomic checkpoint writes, torn checkpoints, kept CSV history.

The end-to-end kill tests (whole CSV and W&B histories against an uninterrupted run) are in
test_train_e2e.py; these pin down each piece they rely on in milliseconds.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
from pathlib import Path

import pytest
import torch

from conftest import read_metrics
from infir import atomic_files
from infir.atomic_files import remove_stale_temp_files, temp_path
from infir.training import checkpoint_io
from infir.training.checkpoint_io import AtomicCheckpointIO
from infir.training.loggers import ResumableCSVLogger
from infir.training.run import kept_history, restore_pending_row, resume_checkpoint, validation_logged_after_checkpoint


DEAD_PID = 4_194_305  # above Linux's largest pid_max: never a live process


def _checkpoint(path: Path, step: int, mtime: int) -> Path:
    torch.save({"global_step": step, "state_dict": {"w": torch.zeros(256)}}, path)
    os.utime(path, (mtime, mtime))
    return path


def test_writer_stages_beside_the_target_fsyncs_and_renames(tmp_path, monkeypatch) -> None:
    """No file named *.ckpt is ever partial, nothing goes through $TMPDIR, and the bytes reach the disk."""
    elsewhere = tmp_path / "tmpdir"
    elsewhere.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
    target = tmp_path / "checkpoints" / "step0000020.ckpt"
    seen_while_writing: list[list[str]] = []
    real_save, real_fsync, real_replace = torch.save, os.fsync, os.replace
    events: list[str] = []

    def save(obj, f):
        seen_while_writing.append(sorted(p.name for p in target.parent.iterdir()))
        real_save(obj, f)

    def fsync(fd):
        events.append("fsync")
        real_fsync(fd)

    def replace(src, dst):
        events.append(f"replace {Path(src).name} -> {Path(dst).name}")
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint_io.torch, "save", save)
    monkeypatch.setattr(atomic_files.os, "fsync", fsync)
    monkeypatch.setattr(atomic_files.os, "replace", replace)
    AtomicCheckpointIO().save_checkpoint({"global_step": 20}, target)

    staged = temp_path(target).name
    assert seen_while_writing == [[staged]]  # staged beside it, not as *.ckpt
    assert events == ["fsync", f"replace {staged} -> step0000020.ckpt", "fsync"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["step0000020.ckpt"]
    assert list(elsewhere.iterdir()) == []
    assert torch.load(target, weights_only=True)["global_step"] == 20


def test_resume_skips_a_torn_newest_checkpoint_naming_it(tmp_path, caplog) -> None:
    good = _checkpoint(tmp_path / "step0000020.ckpt", 20, 1_000)
    torn = _checkpoint(tmp_path / "step0000040.ckpt", 40, 2_000)
    torn.write_bytes(torn.read_bytes()[:300])  # a kill while it was being copied
    os.utime(torn, (2_000, 2_000))
    with caplog.at_level(logging.WARNING, logger="infir.training.run"):
        assert resume_checkpoint("auto", tmp_path) == (good, 20)
    assert str(torn) in caplog.text
    with pytest.raises(ValueError, match=f"resume={torn}: not a readable checkpoint"):
        resume_checkpoint(str(torn), tmp_path)
    assert resume_checkpoint(str(good), tmp_path) == (good, 20)


def test_a_run_with_only_torn_checkpoints_starts_afresh(tmp_path) -> None:
    (tmp_path / "last.ckpt").write_bytes(b"PK\x03\x04 cut")
    assert resume_checkpoint("auto", tmp_path) is None


def test_half_written_checkpoints_are_removed_and_complete_ones_kept(tmp_path) -> None:
    keep = _checkpoint(tmp_path / "step0000020.ckpt", 20, 1_000)
    stale = tmp_path / f".step0000040.ckpt.{DEAD_PID}.tmp"  # a writer killed mid-write
    stale.write_bytes(b"half")
    live = temp_path(tmp_path / "step0000060.ckpt")  # this process is still writing it
    live.write_bytes(b"half")
    assert remove_stale_temp_files(tmp_path, max_depth=0) == [stale]
    assert sorted(tmp_path.iterdir()) == sorted([keep, live])
    assert remove_stale_temp_files(tmp_path / "missing") == []


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    fields = sorted({k for r in rows for k in r})
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


_HISTORY = [{"step": "0", "val/loss": "7.0"}, {"step": "20", "train/loss": "6.0"},
            {"step": "40", "train/loss": "5.5"}, {"step": "40", "val/loss": "5.9"},
            {"step": "45", "train/loss": "5.4"}]


def test_kept_history_drops_rows_after_the_checkpoint_and_a_validation_to_redo(tmp_path) -> None:
    metrics = tmp_path / "metrics.csv"
    _write_csv(metrics, _HISTORY)
    kept, dropped = kept_history(metrics, 40, redo_prefix="val/")
    assert [(r["step"], r["train/loss"] or r["val/loss"]) for r in kept] == [("0", "7.0"), ("20", "6.0"),
                                                                            ("40", "5.5")]
    assert dropped == 2
    kept, dropped = kept_history(metrics, 40, redo_prefix=None)
    assert len(kept) == 4 and dropped == 1
    assert kept_history(tmp_path / "none.csv", 40, None) == ([], 0)


@pytest.mark.parametrize(("step", "owed"), [(0, False), (20, False), (40, True), (80, True), (90, True)])
def test_validation_owed_by_a_checkpoint(step: int, owed: bool) -> None:
    # val every 40 steps of 90: the checkpoint at 40 or 80 precedes that step's validation, and the
    # final one (90) precedes the end-of-run validation
    assert validation_logged_after_checkpoint(step, 40, 90) is owed


def test_csv_logger_continues_the_kept_history_instead_of_deleting_it(tmp_path) -> None:
    """Lightning's CSV writer deletes metrics.csv when it starts; the resumed run must keep its rows."""
    logger = ResumableCSVLogger(save_dir=str(tmp_path), name="csv", version="")
    metrics = Path(logger.log_dir) / "metrics.csv"
    metrics.parent.mkdir(parents=True)
    _write_csv(metrics, _HISTORY)
    kept, _ = kept_history(metrics, 40, redo_prefix="val/")
    logger.continue_history(kept)
    logger.step_source = lambda: 40
    logger.log_hyperparams({"seed": 1})
    logger.log_metrics({"val/loss": 5.9}, step=39)  # Lightning's batch counter; the step source wins
    logger.save()
    rows = read_metrics(metrics)
    assert [(r["step"], r["train/loss"], r["val/loss"]) for r in rows] == [
        ("0", "", "7.0"), ("20", "6.0", ""), ("40", "5.5", ""), ("40", "", "5.9")]
    with pytest.raises(RuntimeError, match="before the ResumableCSVLogger is first used"):
        logger.continue_history(kept)


def test_a_checkpoints_pending_row_is_restored_once() -> None:
    """A kill between the checkpoint and its step's row: the row comes back from the checkpoint, never twice."""
    kept = [{"epoch": "0", "step": "15", "train/loss": "6.1", "val/loss": ""}]
    pending = {"epoch": "0", "step": "20", "train/loss": "5.8", "train/tokens_seen": "10240.0"}
    assert restore_pending_row(kept, pending) == [*kept, pending]
    logged = [*kept, {"epoch": "0", "step": "20", "train/loss": "5.8", "val/loss": ""}]
    assert restore_pending_row(logged, pending) == logged
    val_only = [*kept, {"epoch": "0", "step": "20", "train/loss": "", "val/loss": "5.9"}]
    assert restore_pending_row(val_only, pending) == [*val_only, pending]
    assert restore_pending_row(kept, None) == kept

