"""`logger=many`: CSV + W&B + TensorBoard in one run dir; TensorBoard holds the CSV's history, across resumes."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import REPO, read_metrics, run_train
from infir.training.loggers import build_loggers, continue_history, log_at_step

# 40 optimizer steps: validation at 0 and at the end, checkpoints at 20 and 40, rows every 5 steps
MANY = ["debug=smoke", "model=nano", "data_mix.token_budget=20480", "logger=many"]


def _scalars(tensorboard_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series as TensorBoard's own reader shows it (restart markers applied), as float32."""
    events = EventAccumulator(str(tensorboard_dir), size_guidance={"scalars": 0})  # 0: keep every event
    events.Reload()
    return {tag: [(e.step, float(np.float32(e.value))) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def _csv_series(metrics_csv: Path) -> dict[str, list[tuple[int, float]]]:
    """The CSV's columns as (step, value) series, values rounded to float32 as TensorBoard stores them."""
    series: dict[str, list[tuple[int, float]]] = {}
    for row in read_metrics(metrics_csv):
        for key, value in row.items():
            if key != "step" and value:
                series.setdefault(key, []).append((int(row["step"]), float(np.float32(float(value)))))
    return series


def _tensorboard_loggers(run_dir: Path, continuing: bool, node: dict | None = None) -> list:
    cfg = OmegaConf.create({"tensorboard": node or {"_target_": "lightning.pytorch.loggers.TensorBoardLogger",
                                                   "default_hp_metric": False}})
    return build_loggers(cfg, run_dir, "run", "group", [], is_rank_zero=True, continuing=continuing)


def test_tensorboard_logger_writes_in_the_run_dir_without_a_version_folder(tmp_path) -> None:
    """A config naming neither folder nor version still gets <run dir>/tensorboard/: Lightning's default
    (version None) would open version_0, version_1, ... and split a resumed run in two."""
    (tb,) = _tensorboard_loggers(tmp_path, continuing=False)
    assert Path(tb.log_dir) == tmp_path / "tensorboard"
    tb.log_metrics({"val/loss": 2.5}, step=3)
    tb.finalize("success")
    assert [p.name for p in tmp_path.iterdir()] == ["tensorboard"]
    assert _scalars(tmp_path / "tensorboard") == {"val/loss": [(3, 2.5)]}


def test_resumed_tensorboard_logger_replaces_a_killed_attempts_events_with_the_kept_history(tmp_path) -> None:
    """The killed attempt logged steps 0-30 and died; its checkpoint is step 20. The resumed attempt starts
    from the CSV's rows up to 20 (one of them only in the checkpoint, never reached TensorBoard) and logs 25-40:
    TensorBoard must read 0-40 once each, with the kept values, not the killed attempt's steps 25 and 30."""
    (killed,) = _tensorboard_loggers(tmp_path, continuing=False)
    for step in range(0, 31, 5):
        if step != 20:  # lost with the kill
            killed.log_metrics({"train/loss": 100.0 + step}, step=step)
    killed.experiment.flush()  # a kill -9: no finalize

    (resumed,) = _tensorboard_loggers(tmp_path, continuing=True)
    kept = [{"step": str(s), "train/loss": str(10.0 + s), "val/loss": "5.0" if s == 0 else ""} for s in range(0, 21, 5)]
    continue_history([resumed], kept)
    step = 25
    log_at_step([resumed], lambda: step)  # rows land at the optimizer step, whatever Lightning passes
    for step in range(25, 41, 5):
        resumed.log_metrics({"train/loss": 10.0 + step}, step=step - 1)
    resumed.finalize("success")

    assert [p.name for p in tmp_path.iterdir()] == ["tensorboard"]
    assert _scalars(tmp_path / "tensorboard") == {"train/loss": [(s, 10.0 + s) for s in range(0, 41, 5)],
                                                  "val/loss": [(0, 5.0)]}


@pytest.mark.slow
def test_many_loggers_killed_and_resumed_run_has_the_csv_history_in_one_tensorboard_folder(tmp_path, shared_cache):
    """kill -9 at step 27 (checkpoint at 20), resume with the same command, then re-run the finished command:
    one tensorboard/ folder whose scalars are exactly the CSV's, every step once, W&B and CSV beside it."""
    kill = f"+callbacks.kill={{_target_:kill_points.KillAt,step:27,hook:train_batch_end,marker:{tmp_path}/k}}"
    env = {"PYTHONPATH": str(REPO / "tests")}
    out = tmp_path / "out"
    killed = run_train([*MANY, kill], out, shared_cache, check=False, env=env, fork=True)  # its own session
    assert killed.returncode == -signal.SIGKILL, (killed.stdout[-2000:], killed.stderr[-2000:])
    resumed = run_train([*MANY, kill], out, shared_cache, env=env, fork=True)
    (run_dir,) = (out / "embedded_pretrain" / "runs").iterdir()
    assert "(step 20)" in resumed.stdout + resumed.stderr + (run_dir / "train.log").read_text()

    tensorboard = run_dir / "tensorboard"
    assert sorted(p.name for p in run_dir.iterdir() if p.is_dir() and "tensorboard" in p.name) == ["tensorboard"]
    assert not [p for p in tensorboard.iterdir() if p.is_dir()], "a version_N folder: the resume split the run"
    csv_series = _csv_series(run_dir / "csv" / "metrics.csv")
    val_steps = [s for s, _ in csv_series["val/loss"]]
    assert val_steps[0] == 0 and val_steps[-1] == 40 and len(set(val_steps)) == len(val_steps)
    assert [s for s, _ in csv_series["train/loss"]] == list(range(5, 41, 5))  # once each, 25 and 30 re-logged
    assert _scalars(tensorboard) == csv_series  # every tag, step and value; the killed attempt's 25 is gone
    assert list((run_dir / "wandb").glob("offline-run-*")), "W&B logged beside TensorBoard"

    event_files = sorted((p.name, p.stat().st_size) for p in tensorboard.iterdir())
    again = run_train([*MANY, kill], out, shared_cache, env=env, fork=True)
    assert "run already finished" in again.stdout
    assert sorted((p.name, p.stat().st_size) for p in tensorboard.iterdir()) == event_files
