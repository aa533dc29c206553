"""The eval harness end to end: as a training callback (CSV + W&B) and as `python -m infir.eval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, read_metrics, run_train
from wandb_records import iter_records

TINY_EVAL = ["eval.tasks.gsm8k.limit=4", "eval.tasks.gsm8k.max_new_tokens=24", "eval.tasks.math.limit=2",
             "eval.tasks.mmlu.limit=8", "eval.tasks.humaneval.limit=2", "eval.max_new_tokens=24",
             "eval.tasks.math.max_new_tokens=24", "eval.tasks.humaneval.max_new_tokens=24",
             "eval.allow_code_execution=true"]
EXPECTED = {"eval/gsm8k/strict_accuracy", "eval/gsm8k/flexible_accuracy", "eval/gsm8k/flexible_numeric_accuracy",
            "eval/math/accuracy",
            "eval/mmlu/accuracy", "eval/mmlu/prob_correct", "eval/humaneval/pass@1"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("eval-train")
    args = ["debug=smoke", "model=nano", "eval.callback.enabled=true", "eval.callback.every_n_steps=40", *TINY_EVAL]
    proc = run_train(args, out, shared_cache, fork=True)
    run_dirs = list((out / "embedded_pretrain" / "runs").iterdir())
    assert len(run_dirs) == 1
    return proc, run_dirs[0]


def _wandb_history_keys(run_dir: Path) -> dict[str, list[int]]:
    """Logged keys -> the steps they were logged at, read from the offline W&B run file."""
    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    keys: dict[str, list[int]] = {}
    for record in iter_records(run_file):
        if record.WhichOneof("record_type") == "history":
            items = {item.key or "/".join(item.nested_key): item.value_json for item in record.history.item}
            step = int(json.loads(items.get("trainer/global_step", items.get("_step", "0"))))
            for key in items:
                keys.setdefault(key, []).append(step)
    return keys


def test_callback_logs_eval_metrics_to_csv_and_wandb(trained) -> None:
    _, run_dir = trained
    rows = read_metrics(run_dir / "csv" / "metrics.csv")
    for key in EXPECTED:
        steps = sorted(int(r["step"]) for r in rows if r.get(key))
        assert steps == [40, 80], (key, steps)
        assert all(0.0 <= float(r[key]) <= 1.0 for r in rows if r.get(key))
    logged = _wandb_history_keys(run_dir)
    for key in EXPECTED:
        assert key in logged, (key, sorted(logged)[:20])
    samples = run_dir / "eval" / "step0000080" / "samples_gsm8k.jsonl"
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(lines) == 4 and {"prompt", "output", "extracted_strict", "strict_accuracy"} <= set(lines[0])


def _run_eval(args: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "infir.eval", *args, f"out_dir={out}", "data_mix.sources.stdlib.max_files=40",
           "eval.nll.max_per_domain=4", "eval.progress=false", *TINY_EVAL]
    proc = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"eval results: {out / 'results.json'}" in proc.stdout
    return json.loads((out / "results.json").read_text())


def test_eval_app_scores_an_hf_export_and_its_checkpoint_identically(trained, tmp_path: Path) -> None:
    _, run_dir = trained
    from_export = _run_eval([f"model='{run_dir / 'hf_export'}'"], tmp_path / "export")
    assert set(from_export["tasks"]) == {"gsm8k", "math", "mmlu", "humaneval"}
    assert set(from_export["nll"]) == {"code", "math"}
    assert all(v["bpb"] > 0 and v["perplexity"] > 1 for v in from_export["nll"].values())
    for task, n in {"gsm8k": 4, "math": 2, "mmlu": 8, "humaneval": 2}.items():
        lines = (tmp_path / "export" / f"samples_{task}.jsonl").read_text().splitlines()
        assert len(lines) == n == from_export["tasks"][task]["samples"]
    from_ckpt = _run_eval([f"model_path='{run_dir / 'checkpoints' / 'last.ckpt'}'"], tmp_path / "ckpt")
    assert {t: v["metrics"] for t, v in from_ckpt["tasks"].items()} == \
        {t: v["metrics"] for t, v in from_export["tasks"].items()}
    for task in ("gsm8k", "humaneval"):
        a = (tmp_path / "export" / f"samples_{task}.jsonl").read_text()
        assert a == (tmp_path / "ckpt" / f"samples_{task}.jsonl").read_text()  # same greedy outputs


def _failed_set_up(args: list[str], out: Path) -> str:
    """stderr of an eval that must fail during set-up: exit status 2, one line, no traceback."""
    cmd = [sys.executable, "-m", "infir.eval", *args, f"out_dir={out}"]
    proc = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


def test_eval_app_names_a_bad_model_path(tmp_path: Path) -> None:
    stderr = _failed_set_up([f"model={tmp_path / 'nope'}", "eval.tasks.gsm8k.limit=1"], tmp_path)
    assert f"model={tmp_path / 'nope'}: does not exist" in stderr
    stderr = _failed_set_up([f"model={tmp_path}"], tmp_path / "out")
    assert f"model={tmp_path}: is not an HF model directory (no config.json) or a .ckpt file" in stderr


def test_eval_app_names_an_unknown_task_or_key_before_building_the_suite(tmp_path: Path) -> None:
    model_dir = tmp_path / "hf"  # passes the path check; the config error must come before it is ever read
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    stderr = _failed_set_up([f"model={model_dir}", "+eval.tasks.gsm9k.limit=1"], tmp_path / "a")
    assert "eval.tasks: unknown task 'gsm9k'" in stderr
    stderr = _failed_set_up([f"model={model_dir}", "+eval.tasks.mmlu.shots=3"], tmp_path / "b")
    assert "eval.tasks.mmlu: unknown key(s) ['shots']" in stderr
