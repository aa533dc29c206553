"""Sweeps a researcher can tell apart: each multirun its own folder and W&B group, user tags on every
record, and re-running a sweep resumes it (issue: the researcher's loop)."""

from __future__ import annotations

from pathlib import Path

import yaml

from conftest import read_metrics, run_train
from wandb_records import run_record

# 6 optimizer steps of 8 x 64 tokens: the sweep machinery is under test, not the model
TINY = ["debug=smoke", "data_mix.token_budget=3072", "trainer.val_check_interval=3"]


def _jobs(sweep: Path) -> dict[str, Path]:
    return {p.name: p for p in sweep.iterdir() if p.is_dir() and (p / ".hydra").is_dir()}


def _record(job: Path):
    files = list((job / "wandb").rglob("run-*.wandb"))
    assert len(files) == 1, job
    return run_record(files[0])


def test_two_sweeps_of_one_experiment_keep_their_own_folders_groups_and_tags(tmp_path, shared_cache):
    first = run_train(["-m", *TINY, "seed=1,2", "tags=[lr_probe,v2]"], tmp_path, shared_cache)
    run_train(["-m", *TINY, "seed=1"], tmp_path, shared_cache)
    multirun = tmp_path / "embedded_pretrain" / "multirun"
    sweeps = {p.name: p for p in multirun.iterdir()}
    base = "data_mix.token_budget-3072+debug-smoke"
    a, b = f"{base}+seed-1_2+trainer.val_check_interval-3", f"{base}+seed-1+trainer.val_check_interval-3"
    assert set(sweeps) == {a, b}  # before: one multirun/ folder for every sweep of the experiment
    assert all((sweep / "multirun.yaml").is_file() for sweep in sweeps.values())  # neither overwrote the other
    jobs_a, jobs_b = _jobs(sweeps[a]), _jobs(sweeps[b])
    assert len(jobs_a) == 2 and len(jobs_b) == 1
    assert set(jobs_b) < set(jobs_a)  # the same job (seed=1) in two sweeps: two folders, two runs

    records_a = [_record(job) for job in jobs_a.values()]
    record_b = _record(next(iter(jobs_b.values())))
    assert {r.run_group for r in records_a} == {f"embedded_pretrain/{a}"}
    assert record_b.run_group == f"embedded_pretrain/{b}"
    assert len({r.run_id for r in records_a} | {record_b.run_id}) == 3
    assert {r.display_name for r in records_a} == set(jobs_a)
    for record, job in zip(records_a, jobs_a.values()):
        seed = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["seed"]
        assert list(record.tags)[:3] == ["lr_probe", "v2", "debug=smoke"] and f"seed={seed}" in record.tags
        assert not any(tag.startswith(("paths.", "tags=")) for tag in record.tags)  # bookkeeping is no tag
        hparams = yaml.safe_load((job / "csv" / "hparams.yaml").read_text())
        assert hparams["tags"] == ["lr_probe", "v2"]  # the CSV side carries the user's tags too
    assert "lr_probe" not in record_b.tags

    rows = {name: read_metrics(job / "csv" / "metrics.csv") for name, job in jobs_a.items()}
    again = run_train(["-m", *TINY, "seed=1,2", "tags=[lr_probe,v2]"], tmp_path, shared_cache)
    assert again.stdout.count("run already finished") == 2, again.stdout[-2000:]  # same sweep: resumed
    assert {name: read_metrics(job / "csv" / "metrics.csv") for name, job in jobs_a.items()} == rows
    assert first.returncode == 0


def test_single_runs_group_by_name_and_debug_mode(tmp_path, shared_cache):
    run_train([*TINY, "group=my_probe"], tmp_path, shared_cache)
    run_dir = tmp_path / "embedded_pretrain" / "runs"
    job = next(run_dir.iterdir())
    assert _record(job).run_group == "my_probe"
    run_train([*TINY, "seed=5"], tmp_path, shared_cache)
    smoke = run_dir / "data_mix.token_budget-3072+debug-smoke+seed-5+trainer.val_check_interval-3"
    assert _record(smoke).run_group == "embedded_pretrain/debug-smoke"  # not the default runs' group
