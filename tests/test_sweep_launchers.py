"""Sweeps on a cluster (conf/hydra/launcher/): the sbatch request a Slurm sweep makes, a real two-job sweep
through submitit's local executor, and what the Ray launcher hands ray.init()."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import REPO, read_metrics, run_train
from infir.hydra_support import register_resolvers, sweep_name

register_resolvers()

# 6 optimizer steps of 8 x 64 tokens (tests/test_sweeps.py): the launcher is under test, not the model
TINY = ["debug=smoke", "data_mix.token_budget=3072", "trainer.val_check_interval=3", "logger=csv"]


def _sweep_dir(root: Path) -> Path:
    sweeps = [p for p in root.iterdir() if p.is_dir()]
    assert len(sweeps) == 1, sweeps  # every job of the multirun in the launching command's folder
    return sweeps[0]


def _no_cluster_bin(tmp_path: Path) -> Path:
    """A PATH with Slurm's two commands that refuse: submitit wants `srun` to exist and writes the job
    script before it calls `sbatch`, so the sweep stops right at the submission, on any machine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("srun", "sbatch"):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name}: error: no Slurm controller here (test)" >&2\nexit 1\n')
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def test_slurm_sweep_submits_one_array_job_sized_for_the_1b_runs(tmp_path, shared_cache):
    bin_dir = _no_cluster_bin(tmp_path)
    args = ["-m", "hydra/launcher=slurm", "experiment=data_quality", "curation=heuristic,full",
            "model=llama3_2_1b", "trainer=fsdp2", "hydra.launcher.partition=gpu"]
    proc = run_train(args, tmp_path / "out", shared_cache, check=False, env={"PATH": str(bin_dir)})
    assert proc.returncode != 0 and "sbatch: error: no Slurm controller here" in proc.stderr, proc.stderr[-3000:]

    sweep = _sweep_dir(tmp_path / "out" / "data_quality" / "multirun")
    assert sweep.name == sweep_name(["experiment=data_quality", "curation=heuristic,full", "model=llama3_2_1b",
                                     "trainer=fsdp2"])  # the launcher's own overrides do not name the sweep
    scripts = list((sweep / ".submitit").glob(".submission_file_*.sh"))
    assert len(scripts) == 1  # both jobs in one array, one sbatch call
    script = scripts[0].read_text()
    flags = dict(line[len("#SBATCH --"):].split("=", 1) for line in script.splitlines()
                 if line.startswith("#SBATCH --"))
    assert {key: flags.get(key) for key in ("array", "partition", "nodes", "ntasks-per-node", "gpus-per-node",
                                            "cpus-per-task", "mem", "time", "job-name", "signal")} == {
        "array": "0-1%2", "partition": "gpu", "nodes": "1", "ntasks-per-node": "8", "gpus-per-node": "8",
        "cpus-per-task": "8", "mem": "256GB", "time": "1440", "job-name": "data_quality", "signal": "USR2@120"}
    # job logs beside the sweep, and the sweep folder exported before srun starts the tasks
    assert flags["output"] == f"{sweep}/.submitit/%A_%a/%A_%a_0_log.out"
    assert f"\nexport INFIR_SWEEP_FOLDER={sweep.name}\n" in script
    srun = next(line for line in script.splitlines() if line.startswith("srun "))
    assert srun.endswith(f"-u -m submitit.core._submit {sweep}/.submitit/%j")
    # the two pickled jobs the array would run: the experiment's two recipes
    assert len(list((sweep / ".submitit").glob("*.pkl"))) == 2
    multirun = yaml.safe_load((sweep / "multirun.yaml").read_text())
    assert multirun["hydra"]["launcher"]["_target_"].endswith("SlurmLauncher")


def test_local_submitit_sweep_runs_both_jobs_into_the_sweep_folder(tmp_path, shared_cache):
    # no HF export and a given CPU peak: seconds the two jobs do not need (a peak measured while both run
    # would also be a low one cached for the session); the data settings are test_sweeps.py's, so its
    # runs find this sweep's tokenizer and shards in the session cache
    run_train(["-m", "hydra/launcher=local", *TINY, "export=false", "seed=1,2"], tmp_path, shared_cache,
              env={"INFIR_PEAK_FLOPS": "1e12"})

    sweep = _sweep_dir(tmp_path / "embedded_pretrain" / "multirun")
    jobs = {next(o for o in yaml.safe_load((p / ".hydra" / "overrides.yaml").read_text()) if o.startswith("seed=")): p
            for p in sweep.iterdir() if (p / ".hydra").is_dir()}
    assert set(jobs) == {"seed=1", "seed=2"}
    for job in jobs.values():
        rows = read_metrics(job / "csv" / "metrics.csv")
        assert max(int(row["step"]) for row in rows if row.get("val/loss")) == 6  # trained to the end
        assert (job / "checkpoints" / "last.ckpt").is_file() and (job / "run_plan.json").is_file()
    # each job ran as a submitit job of its own (not in the launching process): its log and its result
    submitit_jobs = [p for p in (sweep / ".submitit").iterdir() if p.is_dir() and any(p.glob("*_result.pkl"))]
    assert len(submitit_jobs) == 2
    for folder in submitit_jobs:
        assert "Job completed successfully" in next(folder.glob("*_0_log.out")).read_text()


def test_ray_cluster_launcher_can_join_a_cluster_and_forwards_the_sweep_folder():
    overrides = ["hydra/launcher=ray_cluster", "experiment=data_quality", "curation=heuristic"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "RayLauncher"
    init = OmegaConf.to_container(launcher.ray_cfg.init, resolve=True)
    # present as null: the plugin's 75 MB default (setdefault) would make ray.init refuse to join a cluster
    assert "object_store_memory" in init and init["object_store_memory"] is None
    assert init["runtime_env"] == {"env_vars": {"INFIR_SWEEP_FOLDER": sweep_name(overrides[1:])}}
    assert OmegaConf.to_container(launcher.ray_cfg.remote) == {"num_gpus": 1, "num_cpus": 8}
