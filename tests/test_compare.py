"""`python -m infir.compare` and its API on fake sweep folders laid out as Hydra and train.py write them."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from infir.compare import CompareError, compare, load_jobs
from infir.compare.__main__ import main

FINAL_VAL_LOSS = {"tiny": {1: 3.0, 2: 3.3, 3: 3.6}, "nano": {1: 2.0, 2: 2.2, 3: 2.7}}


def make_job(path: Path, overrides: list[str], config: dict, val: dict[str, list[float]] | None = None) -> Path:
    """A job folder: .hydra/{overrides,config}.yaml and a sparse Lightning CSV (train rows and val rows apart)."""
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if val is None:
        return path
    (path / "csv").mkdir()
    names = sorted(val)
    with (path / "csv" / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "train/loss", "perf/mfu", *names])
        writer.writeheader()
        for i, step in enumerate((0, 50, 99)):
            writer.writerow({"step": step, "train/loss": 9.0 - i, "perf/mfu": 0.1 * (i + 1)})
            writer.writerow({"step": step, **{name: val[name][i] for name in names if i < len(val[name])}})
    return path


def config_for(model: str, seed: int, tags: list[str] | None = None, curation: str = "raw") -> dict:
    config = {"name": "sweep", "seed": seed, "optimized_metric": "val/loss",
              "model": {"name": model, "hidden_size": 64}, "curation": {"name": curation, "stages": {}}}
    if tags is not None:
        config["tags"] = tags
    return config


def model_seed_sweep(root: Path) -> Path:
    """model=tiny,nano x seed=1,2,3 in the new layout; one tiny job left `model` at its default (tiny)."""
    sweep = root / "outputs" / "sweep" / "multirun" / "model-tiny,nano+seed-1,2,3"
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    for model, finals in FINAL_VAL_LOSS.items():
        for seed, final in finals.items():
            overrides = [f"seed={seed}", "debug=smoke", f"paths.output_dir=/elsewhere/{seed}", "logger=csv"]
            if not (model == "tiny" and seed == 1):
                overrides.insert(0, f"model={model}")
            curve = {"val/loss": [9.0, final - 0.5 if seed == 3 else final + 0.5, final],
                     "val/bpb/code": [4.0, final / 2], "val/bpb/math": [4.0, final / 3]}
            tags = ["probe", "v2"] if model == "nano" else ["probe"]
            make_job(sweep / f"model-{model}+seed-{seed}", overrides, config_for(model, seed, tags), curve)
    return sweep


def row_of(markdown: str, first_cell: str) -> list[str]:
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, rows
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


def test_model_seed_sweep_gives_one_row_per_model_aggregated_over_seeds(tmp_path):
    sweep = model_seed_sweep(tmp_path)
    comparison = compare(load_jobs([tmp_path / "outputs"]))
    assert comparison.metrics == ["val/loss"]  # the jobs' optimized_metric
    assert comparison.group_keys == ["model"]  # seed aggregated; paths/logger overrides never group
    assert "seed" in comparison.aggregated and comparison.fixed == {"debug": "smoke"}
    assert [group.label for group in comparison.groups] == ["model=nano", "model=tiny"]
    tiny = comparison.groups[1]
    assert tiny.stats["val/loss"].n == 3  # includes the job that did not type model=tiny
    assert tiny.stats["val/loss"].mean == pytest.approx(3.3)
    assert (tiny.stats["val/loss"].min, tiny.stats["val/loss"].max) == (3.0, 3.6)
    text = comparison.markdown()
    assert "fixed: debug=smoke" in text
    assert row_of(text, "tiny") == ["tiny", "3", "3.3000", "3.0000 – 3.6000", "1: 3.0000, 2: 3.3000, 3: 3.6000"]
    assert row_of(text, "nano")[2:4] == ["2.3000", "2.0000 – 2.7000"]
    assert comparison.best().label == "model=nano"
    assert (sweep / "model-nano+seed-1").exists()


def test_at_min_takes_the_best_value_over_the_run(tmp_path):
    model_seed_sweep(tmp_path)
    tiny = compare(load_jobs([tmp_path]), at="min").groups[1]
    assert tiny.stats["val/loss"].mean == pytest.approx((3.0 + 3.3 + 3.1) / 3)  # seed 3 dipped to 3.1 mid-run


def test_metric_glob_expands_and_a_job_without_a_metric_is_listed_as_skipped(tmp_path):
    sweep = model_seed_sweep(tmp_path)
    make_job(sweep / "model-nano+seed-4", ["model=nano", "seed=4", "debug=smoke"], config_for("nano", 4),
             {"val/loss": [9.0, 2.5], "val/bpb/code": [3.0, 1.0]})
    make_job(sweep / "model-nano+seed-5", ["model=nano", "seed=5", "debug=smoke"], config_for("nano", 5))  # crashed
    (sweep / "not_a_job" / "csv").mkdir(parents=True)  # no .hydra/overrides.yaml: ignored
    comparison = compare(load_jobs([sweep]), metrics=["val/bpb/*"])
    assert comparison.metrics == ["val/bpb/code", "val/bpb/math"]
    nano = comparison.groups[0]
    assert (nano.stats["val/bpb/code"].n, nano.stats["val/bpb/math"].n) == (4, 3)
    skipped = {skip.job.name: skip.reason for skip in comparison.skipped}
    assert skipped == {"model-nano+seed-4": "never logged val/bpb/math",
                       "model-nano+seed-5": "no csv/metrics.csv (not started, or not logging to CSV)"}
    text = comparison.markdown()
    assert "model-nano+seed-4`: never logged val/bpb/math" in text and "not_a_job" not in text
    assert "(n=3)" in row_of(text, "nano")[5]  # val/bpb/math mean over the 3 seeds that logged it


def test_baseline_column_is_the_relative_change_of_the_mean(tmp_path):
    model_seed_sweep(tmp_path)
    comparison = compare(load_jobs([tmp_path]), baseline="model=tiny")
    text = comparison.markdown()
    header = next(line for line in text.splitlines() if line.startswith("| model |"))
    assert "| val/loss vs model=tiny |" in header
    assert row_of(text, "nano")[4] == "-30.3 %" and row_of(text, "tiny")[4] == "+0.0 %"
    assert comparison.headline() == "best: model=nano at 2.3000 val/loss; baseline model=tiny 3.3000 (-30.3 %)"
    assert json.loads(json.dumps(comparison.to_dict()))["groups"][0]["metrics"]["val/loss"]["vs_baseline_pct"] == \
        pytest.approx(100 * (2.3 / 3.3 - 1))


def test_tags_keep_only_jobs_that_carry_all_of_them(tmp_path):
    sweep = model_seed_sweep(tmp_path)
    make_job(sweep / "old", ["model=tiny", "seed=9"], config_for("tiny", 9, tags=None), {"val/loss": [1.0]})
    only_nano = compare(load_jobs([sweep]), tags=["probe", "v2"], by=["model"])
    assert [group.label for group in only_nano.groups] == ["model=nano"]
    assert [group.label for group in compare(load_jobs([sweep]), tags=["probe"]).groups] == ["model=nano", "model=tiny"]
    with pytest.raises(CompareError, match="no job has tags nope"):
        compare(load_jobs([sweep]), tags=["nope"])


def test_two_key_sweep_gives_one_row_per_model_and_curation(tmp_path):
    sweep = tmp_path / "multirun"  # the older layout: job folders straight in multirun/, names with = and ,
    finals = {("tiny", "raw"): [3.0, 3.2], ("tiny", "full"): [2.7, 2.9], ("nano", "raw"): [2.0, 2.2],
              ("nano", "full"): [1.9, 1.9]}
    for (model, curation), values in finals.items():
        for seed, final in zip((7, 42), values):
            make_job(sweep / f"curation={curation},model={model},seed={seed}",
                     [f"curation={curation}", f"model={model}", f"seed={seed}"],
                     config_for(model, seed, curation=curation), {"val/loss": [9.0, final]})
    comparison = compare(load_jobs([sweep]), baseline="curation=raw", order={"curation": ["raw", "full"]})
    assert comparison.group_keys == ["curation", "model"]
    assert [g.label for g in comparison.groups] == ["curation=raw, model=nano", "curation=raw, model=tiny",
                                                    "curation=full, model=nano", "curation=full, model=tiny"]
    assert all(g.stats["val/loss"].n == 2 for g in comparison.groups)
    full_tiny = comparison.groups[3]
    assert comparison.baseline_of(full_tiny).label == "curation=raw, model=tiny"  # same model, raw curation
    assert comparison.vs_baseline(full_tiny, "val/loss") == pytest.approx(100 * (2.8 / 3.1 - 1))
    figure = comparison.figure()
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()][0] == "curation=raw\nmodel=nano"


def test_numeric_values_sort_numerically_and_higher_is_better_metrics_pick_the_max(tmp_path):
    for i, lr in enumerate(["1e-3", "0.0001", "0.01"]):
        make_job(tmp_path / f"lr-{lr}", [f"phase.lr={lr}"], config_for("tiny", 1),
                 {"val/loss": [2.0 + i], "eval/gsm8k/strict_accuracy": [0.1 * (i + 1)]})
    comparison = compare(load_jobs([tmp_path]), metrics=["val/loss", "eval/gsm8k/strict_accuracy"])
    assert [g.key["phase.lr"] for g in comparison.groups] == ["0.0001", "0.001", "0.01"]
    assert comparison.directions == {"val/loss": "lower", "eval/gsm8k/strict_accuracy": "higher"}
    assert comparison.best("eval/gsm8k/strict_accuracy").key["phase.lr"] == "0.01"
    assert comparison.best("val/loss").key["phase.lr"] == "0.001"
    flipped = compare(load_jobs([tmp_path]), metrics=["val/loss"], directions={"val/*": "higher"})
    assert flipped.best("val/loss").key["phase.lr"] == "0.01"


def test_cli_prints_the_table_and_writes_md_png_json_beside_the_runs(tmp_path):
    sweep = model_seed_sweep(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "infir.compare", str(sweep), "--baseline", "model=tiny",
                           "--metric", "val/loss", "--metric", "val/bpb/*"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "| tiny | 3 | 3.3000 | 3.0000 – 3.6000 | +0.0 % |" in proc.stdout
    out = sweep / "comparison"
    assert (out / "comparison.md").read_text() == proc.stdout
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.loads((out / "comparison.json").read_text())
    assert numbers["metrics"] == ["val/loss", "val/bpb/code", "val/bpb/math"]
    assert [v["value"] for v in numbers["groups"][1]["metrics"]["val/loss"]["values"]] == [3.0, 3.3, 3.6]
    assert not (REPO / "experiments" / "comparison").exists()


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "infir.compare", str(tmp_path / "empty")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"[infir] compare: no job folder (a directory with .hydra/overrides.yaml) under {tmp_path / 'empty'}"]
    sweep = model_seed_sweep(tmp_path)
    assert main([str(sweep), "--metric", "val/nope"]) == 2
    assert "metric 'val/nope' matches nothing any job logged; logged: perf/mfu, train/loss, val/bpb/code, " \
           "val/bpb/math, val/loss" in capsys.readouterr().err
    assert main([str(sweep), "--by", "optimizer.lr"]) == 2
    assert "no job has key optimizer.lr" in capsys.readouterr().err
    assert not (sweep / "comparison").exists()  # nothing written on bad input


def test_compare_imports_no_training_stack():
    code = ("import sys, infir.compare, infir.compare.__main__; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'lightning', 'transformers'}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_a_job_repeated_across_sweeps_is_flagged_not_silently_averaged(tmp_path):
    for model in ("tiny", "nano"):
        make_job(tmp_path / "first" / f"model-{model}+seed-1", [f"model={model}", "seed=1"], config_for(model, 1),
                 {"val/loss": [2.0]})
    config = config_for("nano", 1)
    del config["model"]["name"]  # only Hydra's record of the group choice says which model this was
    rerun = make_job(tmp_path / "rerun" / "seed-1", ["seed=1"], config, {"val/loss": [1.0]})
    (rerun / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": {"model": "nano"}}}}))
    comparison = compare(load_jobs([tmp_path]))
    assert [g.label for g in comparison.groups] == ["model=nano", "model=tiny"]
    assert comparison.groups[0].stats["val/loss"].n == 2
    assert comparison.notes == [f"model=nano: seed=1 in 2 jobs ({tmp_path / 'first' / 'model-nano+seed-1'}, "
                                f"{rerun})"]
    assert "note: model=nano: seed=1 in 2 jobs" in comparison.markdown()
