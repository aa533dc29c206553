"""`hparams_search=embedded_lr`: an Optuna study over train.py's returned val/loss, in a Hydra multirun."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import last_value, read_metrics, run_train

# 5 optimizer steps per trial (validation at 0 and at the end); no HF export and CSV only (no W&B run to open
# and close per trial): the study only needs val/loss. W&B across a multirun's jobs: tests/test_sweeps.py.
STUDY = ["-m", "hparams_search=embedded_lr", "debug=smoke", "model=nano", "data_mix.token_budget=2560",
         "export=false", "logger=csv", "hydra.sweeper.n_trials=3"]
SEARCHED = ("phase.optimizer.lr", "phase.schedule.warmup_ratio", "phase.optimizer.weight_decay")


def _best_value(log: str) -> float:
    (value,) = re.findall(r"Best value: (\S+)", log)
    return float(value)


def _trials(out: Path) -> dict[Path, dict[str, float]]:
    """Each trial's run dir (found by its CSV, wherever the sweep folder is) -> its sampled values."""
    trials = {}
    for metrics_csv in out.rglob("csv/metrics.csv"):
        run_dir = metrics_csv.parent.parent
        overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
        trials[run_dir] = {k: float(v) for k, v in (o.split("=", 1) for o in overrides) if k in SEARCHED}
    return trials


@pytest.mark.slow
def test_study_reports_the_best_trial_and_a_rerun_reuses_the_finished_trials(tmp_path, shared_cache) -> None:
    """3 trials: the best value the sweeper prints and saves is the lowest final val/loss of the trials'
    CSVs, with that trial's sampled values. Running the study again (now also persisted in a SQLite storage)
    samples the same trials, finds them finished, trains none of them and reports the same best trial."""
    out = tmp_path / "out"
    first = run_train(STUDY, out, shared_cache, fork=True)
    log = first.stdout + first.stderr
    assert "Best parameters:" in log
    trials = _trials(out)
    assert len(trials) == 3 and all(set(values) == set(SEARCHED) for values in trials.values())
    assert len({values["phase.optimizer.lr"] for values in trials.values()}) == 3  # three different samples
    final = {run_dir: last_value(read_metrics(run_dir / "csv" / "metrics.csv"), "val/loss") for run_dir in trials}
    assert {step for step, _ in final.values()} == {5}
    best_dir = min(final, key=lambda d: final[d][1])
    assert _best_value(log) == final[best_dir][1]

    (results_file,) = out.rglob("optimization_results.yaml")
    results = yaml.safe_load(results_file.read_text())
    assert results["best_value"] == final[best_dir][1]
    assert results["best_params"] == pytest.approx(trials[best_dir])
    assert all(results_file.parent in run_dir.parents for run_dir in trials)  # the trials are the sweep's jobs

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    again = run_train([*STUDY, f"hydra.sweeper.storage={storage}"], out, shared_cache, fork=True)
    log = again.stdout + again.stderr
    assert log.count("run already finished") == 3 and "] finished" not in log
    assert _trials(out) == trials
    assert _best_value(log) == final[best_dir][1]
    study = optuna.load_study(study_name="embedded_lr", storage=storage)
    assert sorted(t.value for t in study.trials) == sorted(value for _, value in final.values())
