"""Sweeps a researcher can tell apart: each multirun its own folder and W&B group, user tags on every
record, and re-running a sweep resumes it (issue: the researcher's loop)."""

from __future__ import annotations

from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from conftest import REPO, run_train, start_train
from infir.hydra_support import register_resolvers
from infir.training.train import run_group
from wandb_records import run_record

register_resolvers()

# 6 optimizer steps of 8 x 64 tokens: the sweep machinery is under test, not the model
TINY = ["debug=smoke", "data_mix.token_budget=3072", "trainer.val_check_interval=3"]


def _jobs(sweep: Path) -> dict[str, Path]:
    return {p.name: p for p in sweep.iterdir() if p.is_dir() and (p / ".hydra").is_dir()}


def _record(job: Path):
    files = list((job / "wandb").rglob("run-*.wandb"))
    assert len(files) == 1, job
    return run_record(files[0])


def test_two_sweeps_of_one_experiment_keep_their_own_folders_groups_and_tags(tmp_path, shared_cache):
    # two independent sweeps, run at the same time (one thread each, two cores)
    second = start_train(["-m", *TINY, "seed=1"], tmp_path, shared_cache, fork=True)
    try:
        first = run_train(["-m", *TINY, "seed=1,2", "tags=[lr_probe,v2]"], tmp_path, shared_cache, fork=True)
    finally:
        second.wait()
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

    # re-running a sweep resumes its jobs: tests/test_hparams_search.py (finished trials are not retrained)
    assert first.returncode == 0


def _group(overrides: list[str], mode: RunMode = RunMode.RUN) -> str:
    """run_group() of a config composed as train.py's Hydra job would be."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    cfg.hydra.mode = mode
    cfg.hydra.runtime.choices.debug = next((o.split("=")[1] for o in overrides if o.startswith("debug=")), None)
    HydraConfig.instance().set_config(cfg)
    try:
        return run_group(cfg)
    finally:
        HydraConfig.instance().cfg = None


def test_single_runs_group_by_name_and_debug_mode():
    assert _group([]) == "embedded_pretrain"
    assert _group(["debug=smoke"]) == "embedded_pretrain/debug-smoke"  # before: the default runs' group
    assert _group(["debug=smoke", "group=my_probe"]) == "my_probe"
    assert _group(["sweep_name=lr_probe"], RunMode.MULTIRUN) == "embedded_pretrain/lr_probe"
