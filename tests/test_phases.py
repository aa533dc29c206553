"""Phase hand-off: annealing inherits the pre-training LR and decays it to the floor; init_from=hf."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import read_metrics, run_train
from infir.training.phases import TRAINING_STATE_FILE, continued_tokenizer_cfg, inherited_lr, resolve_phase_lr
from infir.training.schedules import LRSchedule

SMOKE = ["debug=smoke", "model=nano"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, shared_cache) -> Path:
    out = tmp_path_factory.mktemp("phases")
    run_train([*SMOKE, "data_mix.token_budget=10240"], out, shared_cache, fork=True)
    (run_dir,) = (out / "embedded_pretrain" / "runs").iterdir()
    return run_dir


def test_export_records_the_final_lr(pretrained: Path) -> None:
    state = json.loads((pretrained / "hf_export" / TRAINING_STATE_FILE).read_text())
    rows = read_metrics(pretrained / "csv" / "metrics.csv")
    last_lr = [float(r["train/lr"]) for r in rows if r.get("train/lr")][-1]
    assert state["phase"] == "pretrain" and state["global_step"] == 20
    # the cosine floor (min_lr_ratio 0.1 of 3e-3) after the last step; the CSV's last train/lr is the LR
    # the last update used, one schedule step before it
    assert state["final_lr"] == pytest.approx(3e-4, rel=1e-6) and last_lr >= state["final_lr"]
    ckpt_lr = inherited_lr(f"ckpt:{pretrained / 'checkpoints' / 'last.ckpt'}")
    assert ckpt_lr == pytest.approx(state["final_lr"], rel=1e-9)


def test_anneal_starts_at_the_inherited_lr_and_ends_at_the_floor(pretrained: Path, tmp_path: Path,
                                                                 shared_cache) -> None:
    export = pretrained / "hf_export"
    inherited = inherited_lr(f"hf:{export}")
    out = tmp_path / "anneal"
    run_train([*SMOKE, "phase=anneal", f"phase.init_from='hf:{export}'", "data_mix.token_budget=10240",
               "phase.schedule.min_lr=1e-5", "trainer.log_every_n_steps=1"], out, shared_cache, fork=True)
    (run_dir,) = (out / "embedded_pretrain" / "runs").iterdir()
    rows = read_metrics(run_dir / "csv" / "metrics.csv")
    lrs = [(int(r["step"]), float(r["train/lr"])) for r in rows if r.get("train/lr")]
    assert lrs[0][1] == pytest.approx(inherited, rel=1e-6)  # no re-warmup: the decay starts where pre-training ended
    assert lrs[-1][1] == pytest.approx(1e-5, rel=1e-6) and len(lrs) == 20  # the last step sits on the floor
    assert all(a[1] >= b[1] for a, b in zip(lrs, lrs[1:]))  # monotone decay
    # the anneal run kept the pre-trained model's tokenizer (no new BPE on the anneal text)
    plan = json.loads((run_dir / "run_plan.json").read_text())
    assert Path(plan["tokenizer"]) == export
    state = json.loads((run_dir / "hf_export" / TRAINING_STATE_FILE).read_text())
    assert state["phase"] == "anneal" and state["final_lr"] == pytest.approx(1e-5, rel=1e-6)


def test_resolve_phase_lr_and_schedule_floor(tmp_path: Path) -> None:
    (tmp_path / TRAINING_STATE_FILE).write_text(json.dumps({"final_lr": 2e-3}))
    phase = {"init_from": f"hf:{tmp_path}", "optimizer": {"lr": "inherit"},
             "schedule": {"min_lr": 1e-4, "min_lr_ratio": 0.5}}
    lr, ratio = resolve_phase_lr(phase)
    schedule = LRSchedule("linear", total_steps=50, warmup_steps=0, min_lr_ratio=ratio)
    assert lr * schedule(0) == pytest.approx(2e-3) and lr * schedule(49) == pytest.approx(1e-4)
    cosine = LRSchedule("cosine", total_steps=50, warmup_steps=0, min_lr_ratio=ratio)
    assert lr * cosine(0) == pytest.approx(2e-3) and lr * cosine(49) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="min_lr=0.01 must be in"):
        resolve_phase_lr({**phase, "schedule": {"min_lr": 1e-2}})
    with pytest.raises(ValueError, match="infir_training.json is missing"):
        resolve_phase_lr({**phase, "init_from": f"hf:{tmp_path / 'other'}"})
    with pytest.raises(ValueError, match="needs phase.init_from"):
        inherited_lr("scratch")


def test_continued_phases_keep_the_model_tokenizer(pretrained: Path) -> None:
    base = {"path": None, "vocab_size": 1024}
    assert continued_tokenizer_cfg(base, "scratch")["path"] is None
    assert continued_tokenizer_cfg(base, f"hf:{pretrained / 'hf_export'}")["path"] == str(pretrained / "hf_export")
    from_ckpt = continued_tokenizer_cfg(base, f"ckpt:{pretrained / 'checkpoints' / 'last.ckpt'}")["path"]
    assert Path(from_ckpt).is_dir() and (Path(from_ckpt) / "tokenizer.json").is_file()
    assert continued_tokenizer_cfg({**base, "path": "/explicit"}, "hf:/x")["path"] == "/explicit"


def test_init_from_hf_gives_identical_initial_logits(pretrained: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from infir.models.causal_lm import build_causal_lm

    export = pretrained / "hf_export"
    tokenizer = AutoTokenizer.from_pretrained(export, local_files_only=True)
    reference = AutoModelForCausalLM.from_pretrained(export, local_files_only=True).eval()
    continued = build_causal_lm({"attn_implementation": "sdpa"}, len(tokenizer), tokenizer.bos_token_id,
                                tokenizer.eos_token_id, tokenizer.pad_token_id, init_from=f"hf:{export}").eval()
    ids = torch.tensor([tokenizer("def f(x):\n    return x + 1\n")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(continued(ids).logits, reference(ids).logits)


def test_last_checkpoint_is_the_final_step_and_a_rerun_trains_nothing(pretrained: Path, shared_cache) -> None:
    """25 steps with periodic saves every 20: last.ckpt must still be step 25, and re-running the
    finished command must not train the tail again."""
    out = pretrained.parent.parent.parent
    args = [*SMOKE, "data_mix.token_budget=12800"]
    run_train(args, out, shared_cache, fork=True)
    (run_dir,) = [p for p in (out / "embedded_pretrain" / "runs").iterdir() if p != pretrained]
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True, mmap=True)
    assert last["global_step"] == 25
    metrics_before = (run_dir / "csv" / "metrics.csv").read_text()
    again = run_train(args, out, shared_cache, fork=True)
    assert "run already finished (25 steps)" in again.stdout
    assert (run_dir / "csv" / "metrics.csv").read_text() == metrics_before  # nothing trained or rewritten
