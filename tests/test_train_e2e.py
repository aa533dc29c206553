"""End-to-end runs of train.py on the smoke config (seconds each): what users rely on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, TRAIN_TIMEOUT_S, comparable_row, last_value, read_metrics, run_train, start_train
from wandb_records import merged_history, run_record, segments

SMOKE = ["debug=smoke", "model=nano"]


@pytest.fixture(scope="module")
def smoke_and_killed(tmp_path_factory, shared_cache):
    """The uninterrupted smoke run (a fresh `python train.py`) and, meanwhile on the other core, the kill test's
    three killed attempts (forked runs: kill -9 (a) the moment step 20's checkpoint file is complete, before that
    step's row is logged, (b) mid-way between checkpoints, (c) just after a checkpoint, before that step's
    validation). The same command line every time (same run dir); each kill fires once (its marker file)."""
    out = tmp_path_factory.mktemp("smoke")
    straight = start_train(SMOKE, out, shared_cache)
    work = tmp_path_factory.mktemp("killed")
    kills = [f"+callbacks.kill_ckpt={{_target_:kill_points.KillAt,step:20,hook:checkpoint_written,marker:{work}/k0}}",
             f"+callbacks.kill_mid={{_target_:kill_points.KillAt,step:27,hook:train_batch_end,marker:{work}/k1}}",
             f"+callbacks.kill_val={{_target_:kill_points.KillAt,step:40,hook:validation_start,marker:{work}/k2}}"]
    env = {"PYTHONPATH": str(REPO / "tests")}
    try:
        attempts = [run_train([*SMOKE, *kills], work / "out", shared_cache, check=False, env=env, fork=True)
                    for _ in range(3)]
    finally:
        proc = straight.wait()
    return (proc, _only_run_dir(out)), (work / "out", kills, env, attempts)


@pytest.fixture(scope="module")
def smoke_run(smoke_and_killed):
    return smoke_and_killed[0]


def test_smoke_run_learns_and_reports_where_its_outputs_are(smoke_run):
    proc, run_dir = smoke_run
    rows = read_metrics(run_dir / "csv" / "metrics.csv")
    val = [(int(r["step"]), float(r["val/loss"])) for r in rows if r.get("val/loss")]
    assert val[0][0] == 0 and val[-1][1] < val[0][1] * 0.9  # step-0 baseline, then learning
    assert {"val/loss/code", "val/loss/math", "val/ppl", "perf/tokens_per_s", "perf/mfu",
            "train/tokens_seen"} <= set(rows[0])
    for path in (run_dir / "checkpoints" / "last.ckpt", run_dir / "hf_export" / "config.json",
                 run_dir / "train.log"):
        assert path.exists(), path
        assert str(path.parent if path.name != "train.log" else run_dir) in proc.stdout
    assert list((run_dir / "wandb").glob("offline-run-*")), "offline W&B run missing"


def test_hf_export_round_trip_gives_identical_logits(smoke_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from infir.models.causal_lm import build_causal_lm

    _, run_dir = smoke_run
    export = run_dir / "hf_export"
    loaded = AutoModelForCausalLM.from_pretrained(export, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(export, local_files_only=True)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    cfg = json.loads((export / "config.json").read_text())
    native = build_causal_lm({**_model_cfg(cfg)}, len(tokenizer), tokenizer.bos_token_id,
                             tokenizer.eos_token_id, tokenizer.pad_token_id,
                             init_from=f"ckpt:{run_dir / 'checkpoints' / 'last.ckpt'}").eval()
    ids = torch.tensor([tokenizer("def f(x):\n    return 2 * x")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, native(ids).logits)
    assert ckpt["global_step"] > 0
    # and the export generates text through plain transformers
    out = loaded.generate(ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 5 or tokenizer.eos_token_id in out[0].tolist()


def _model_cfg(hf: dict) -> dict:
    keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "rms_norm_eps", "tie_word_embeddings", "initializer_range", "max_position_embeddings")
    return {**{k: hf[k] for k in keys}, "rope_theta": hf["rope_parameters"]["rope_theta"],
            "vocab_multiple": hf["vocab_size"], "attn_implementation": "sdpa"}


def _only_run_dir(out: Path) -> Path:
    (run_dir,) = (out / "embedded_pretrain" / "runs").iterdir()
    return run_dir


def test_killed_three_times_run_keeps_the_whole_history_of_an_uninterrupted_run(smoke_and_killed, shared_cache):
    """Three kill -9s (see smoke_and_killed), then the newest checkpoint cut short and a half-written one left
    behind; every CSV row and every W&B record (step, keys, values) of the resumed run must equal the
    uninterrupted run's."""
    (_, straight_dir), (out, kills, env, killed_runs) = smoke_and_killed
    for attempt, killed in enumerate(killed_runs):
        assert killed.returncode == -signal.SIGKILL, (attempt, killed.stdout[-2000:], killed.stderr[-2000:])
    run_dir = _only_run_dir(out)
    checkpoints = run_dir / "checkpoints"
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["global_step"] == 40
    # a kill while the newest checkpoint was being copied, and a writer's temp file left behind
    torn = checkpoints / "last.ckpt"
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 3])
    stale = checkpoints / ".step0000060.ckpt.4194305.tmp"  # its writer (pid above any pid_max) is gone
    stale.write_bytes(b"half a checkpoint")

    resumed = run_train(SMOKE + kills, out, shared_cache, env=env, fork=True)
    log = resumed.stdout + resumed.stderr + (run_dir / "train.log").read_text()
    assert f"skipping unreadable checkpoint {torn}" in log
    assert "(step 40)" in log and "its validation is re-run" in log
    assert not stale.exists()

    a = read_metrics(straight_dir / "csv" / "metrics.csv")
    b = read_metrics(run_dir / "csv" / "metrics.csv")
    # Same machine, same thread count, same deterministic CPU kernels: bit-identical, so tolerance 0.
    assert [comparable_row(r) for r in b] == [comparable_row(r) for r in a]
    assert [int(r["step"]) for r in a if r.get("val/loss")] == [0, 40, 80]

    wa, wb = merged_history(straight_dir / "wandb"), merged_history(run_dir / "wandb")
    assert [step for step, _ in wa] == list(range(0, 81, 5))  # the optimizer step, as in checkpoint names
    assert [(s, comparable_row(r)) for s, r in wb] == [(s, comparable_row(r)) for s, r in wa]
    run_id = (run_dir / "wandb_run_id").read_text()
    attempts = segments(run_dir / "wandb")
    # one W&B run continued: every attempt carries the persisted id (a killed attempt's data file may be
    # cut short, so its id is read from the folder name) and the last is recorded as a resumption
    assert len(attempts) == 4 and all(p.parent.name.endswith(run_id) for p in attempts)
    assert run_record(attempts[-1]).run_id == run_id and run_record(attempts[-1]).resume
    assert not run_record(next((straight_dir / "wandb").glob("offline-run-*/run-*.wandb"))).resume


def test_ddp_two_cpu_processes_match_single_process_with_one_set_of_outputs(smoke_run, tmp_path, shared_cache):
    """The smoke run (micro batch 4 x 2 accumulation steps in one process) is the single-process reference."""
    _, single_dir = smoke_run
    run_train([*SMOKE, "trainer=ddp", "trainer.devices=2"], tmp_path / "ddp", shared_cache)  # 2 x micro batch 4
    ddp_runs = list((tmp_path / "ddp" / "embedded_pretrain" / "runs").iterdir())
    assert len(ddp_runs) == 1, ddp_runs
    run_dir = ddp_runs[0]
    assert sorted(p.name for p in run_dir.glob("*.log")) == ["config_tree.log", "train.log"]  # one of each
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    a = read_metrics(single_dir / "csv" / "metrics.csv")
    b = read_metrics(run_dir / "csv" / "metrics.csv")
    # Ranks take disjoint halves of each global batch, so 2 x 4 under DDP sees exactly the
    # sequences 1 x (4 x 2) sees: same losses up to float reduction order. Ranks reading the same
    # data would give visibly different gradients and losses.
    assert last_value(a, "val/loss")[1] == pytest.approx(last_value(b, "val/loss")[1], abs=2e-3)
    assert last_value(a, "val/loss")[0] == last_value(b, "val/loss")[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_torchrun_nodes_continue_the_single_process_run_with_one_set_of_outputs(smoke_run, tmp_path,
                                                                                   shared_cache):
    """Two torchrun agents on this machine (--nnodes=2, one gloo process each, c10d rendezvous), as on two nodes
    of a cluster, continue the smoke run's first kept periodic checkpoint, saved by one process with 4 x 2
    accumulation (world size 1 -> 2, accumulation 2 -> 1). Before: torchrun's LOCAL_RANK is 0 on every node, so
    the second node's process took itself for rank zero and failed on the run dir's lock; resumed on another
    world size, Lightning's restored micro-batch counters skipped the final validation."""
    _, single_dir = smoke_run
    checkpoint = min((single_dir / "checkpoints").glob("step*.ckpt"))
    start = torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"]
    torchrun = Path(sys.executable).with_name("torchrun")
    port = _free_port()
    cmd = [str(torchrun), "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{port}", f"--rdzv-id=infir-test-{port}", str(REPO / "train.py"), *SMOKE,
           "trainer=ddp", "trainer.devices=1", "trainer.num_nodes=2", f"resume={checkpoint}",
           f"paths.output_dir={tmp_path / 'out'}", f"paths.cache_dir={shared_cache}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    agents = []
    for node in (0, 1):
        with (tmp_path / f"node{node}.out").open("wb") as out:
            agents.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True))
    try:
        codes = [agent.wait(TRAIN_TIMEOUT_S) for agent in agents]
    finally:
        for agent in agents:
            if agent.poll() is None:
                os.killpg(agent.pid, signal.SIGKILL)
                agent.wait()
    output = [(tmp_path / f"node{node}.out").read_text(errors="replace") for node in (0, 1)]
    assert codes == [0, 0], "\n\n".join(text[-4000:] for text in output)
    assert sum(text.count("[infir] finished 80 steps") for text in output) == 1  # rank 0 alone reports

    (run_dir,) = (tmp_path / "out" / "embedded_pretrain" / "runs").iterdir()
    assert sorted(p.name for p in run_dir.glob("*.log")) == ["config_tree.log", "train.log"]
    log = (run_dir / "train.log").read_text()
    assert log.count("run plan:") == 1  # the second node's process writes no log file and no run files
    assert "of world size 1 (accumulation 2) on world size 2 (accumulation 1)" in log
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    a = [r for r in read_metrics(single_dir / "csv" / "metrics.csv") if int(r["step"]) > start]
    b = [r for r in read_metrics(run_dir / "csv" / "metrics.csv") if int(r["step"]) > start]
    # every optimizer step reads the same 8 sequences as in one process: the same gradients (norms), LR and
    # validation losses up to float reduction order; train/loss is rank 0's own micro-batch
    for key in ("val/loss", "val/loss/code", "train/grad_norm", "train/lr"):
        series = [[(int(r["step"]), float(r[key])) for r in rows if r.get(key)] for rows in (a, b)]
        assert [s for s, _ in series[1]] == [s for s, _ in series[0]] and series[0], (key, series)
        for (step, x), (_, y) in zip(*series):
            assert y == pytest.approx(x, rel=1e-3), (key, step)
    assert last_value(b, "val/loss")[0] == 80
