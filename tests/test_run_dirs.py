"""Run directory names: deterministic, distinct, and usable as printed (issue 10, point 19).

A path the run prints (`[infir] HF export: <run dir>/hf_export`) must pass back to Hydra
(`python -m infir.eval model=<path>`, `phase.init_from=hf:<path>`) and through the shell unquoted.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from conftest import REPO
from infir.hydra_support import path_name, register_resolvers, run_name, sweep_name

register_resolvers()

OVERRIDE_SETS = [
    ["debug=smoke"],
    ["debug=smoke", "model=nano"],
    ["data_mix.token_budget=10240", "debug=smoke", "model=nano"],
    ["phase=anneal", "phase.init_from=hf:outputs/embedded_pretrain/runs/default/hf_export"],
    ["phase.optimizer.lr=1e-3", "seed=-3", "+data_mix.weights.web=0"],
    ["tokenizer.path='/models/my tok=v2'", "trainer.devices=[0,1]"],   # characters Hydra and the shell read
    [f"data_mix.token_budget={10 ** 6}", *(f"+data_mix.weights.domain_{i}=0" for i in range(12))],  # too long
]


def _run_dirs(overrides: list[str]) -> tuple[str, str]:
    """(single-run dir, multirun job dir) exactly as Hydra resolves them for train.py."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    return str(cfg.hydra.run.dir), f"{cfg.hydra.sweep.dir}/{cfg.hydra.sweep.subdir}"


def _overrides_dirname(overrides: list[str]) -> str:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return str(compose(config_name="train", overrides=overrides, return_hydra_config=True)
                   .hydra.job.override_dirname)


@pytest.mark.parametrize("overrides", OVERRIDE_SETS, ids=" ".join)
def test_printed_paths_pass_back_to_hydra_and_the_shell_unquoted(overrides):
    for run_dir in _run_dirs(overrides):
        export = f"{run_dir}/hf_export"
        assert shlex.quote(export) == export, f"the shell needs quotes around {export}"
        for override in (f"model_path={export}", f"phase.init_from=hf:{export}", f"resume={run_dir}/last.ckpt"):
            parsed = OverridesParser.create().parse_override(override)
            assert override.split("=", 1)[1] == parsed.value(), override


def test_names_read_as_the_overrides_and_stay_distinct():
    assert run_name("") == "default"
    names = {run_name(_overrides_dirname(o)) for o in OVERRIDE_SETS}
    assert len(names) == len(OVERRIDE_SETS)
    assert _run_dirs(["debug=smoke", "model=nano"])[0].endswith("/runs/debug-smoke+model-nano")
    assert _run_dirs([])[0].endswith("/runs/default")
    # replaced characters and long names get a hash of the original overrides: no two runs share a dir
    assert run_name("tokenizer.path-/a b") != run_name("tokenizer.path-/a_b")
    assert run_name("tokenizer.path-/a b") == run_name("tokenizer.path-/a b")  # deterministic: resume finds it
    assert max(len(n) for n in names) <= 200


def test_eval_accepts_the_printed_export_path_typed_unquoted(tmp_path):
    """The README's next step, typed as printed into a shell: Hydra parses it (it used to stop at '=')."""
    run_dir, _ = _run_dirs(["debug=smoke", "model=nano"])
    export = f"{run_dir}/hf_export"
    command = f"{shlex.quote(sys.executable)} -m infir.eval model={export} --cfg job"
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.run(command, shell=True, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"model_path: {export}" in proc.stdout


def test_long_names_are_kept_whole_up_to_what_a_folder_name_safely_holds():
    overrides = "+".join(f"phase.optimizer.lr-0.00{i}" for i in range(1, 8))  # 7 swept knobs, 174 characters
    assert run_name(overrides) == overrides  # before: cut at 96 characters and hashed
    assert len(run_name(overrides * 2)) == 200 and run_name(overrides * 2) != run_name(overrides * 3)


def test_bookkeeping_overrides_do_not_start_a_new_run_dir():
    def run_and_job_dir(overrides):
        run_dir, job_dir = _run_dirs(overrides)
        return run_dir, job_dir.rsplit("/", 1)[1]  # (sweep_name names the sweep folder, by design)

    plain = run_and_job_dir(["debug=smoke"])
    for extra in ("tags=[probe,v2]", "group=mine", "sweep_name=lr_probe", "ckpt_path=/x/last.ckpt", "resume=never",
                  "logger=csv"):
        assert run_and_job_dir(["debug=smoke", extra]) == plain, extra


def test_sweep_folders_are_named_by_the_launching_command_line():
    assert sweep_name(["model=tiny,nano", "seed=1,2"]) == "model-tiny_nano+seed-1_2"
    assert sweep_name(["seed=1,2", "model=tiny,nano"]) == "model-tiny_nano+seed-1_2"  # order does not matter
    assert sweep_name(["seed=1,2", "tags=[a]", "paths.output_dir=/tmp/x", "resume=never"]) == "seed-1_2"
    assert sweep_name(["seed=1,2"]) != sweep_name(["seed=1,3"])
    assert sweep_name([]) == "default"
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        named = compose(config_name="train", overrides=["sweep_name=lr probe"], return_hydra_config=True)
    assert str(named.hydra.sweep.dir).endswith("/embedded_pretrain/multirun/" + run_name("lr probe"))


def test_eval_folders_of_two_experiments_default_exports_do_not_collide(tmp_path):
    first = tmp_path / "outputs" / "embedded_pretrain" / "runs" / "default" / "hf_export"
    second = tmp_path / "outputs" / "data_quality" / "runs" / "default" / "hf_export"
    assert path_name(str(first)) != path_name(str(second))  # before: both runs_default_hf_export
    assert "embedded_pretrain_runs_default_hf_export" in path_name(str(first))
    assert path_name(str(first)) == path_name(f"{first}/")  # one model, one folder
    relative = os.path.relpath(first)
    assert path_name(relative) == path_name(str(first))
