"""`python train.py experiment=embedded_vl_chain` under debug=smoke: pre-training -> alignment -> rendering ->
instruction tuning, each phase a normal run from the previous export; the curriculum's freezing holds across
the exports, every VL phase's loss falls, each phase ends with the multimodal eval, and the last export is
scored by `python -m infir.eval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, read_metrics, run_train

VL_EVAL = ("eval.callback.enabled=true", "eval.tasks.render_text.limit=8", "eval.tasks.render_math.limit=8",
           "eval.tasks.screenspot.limit=8", "eval.max_new_tokens=8")
VL_PHASE = ",".join(f"'{o}'" for o in ["model=nano", "modality=vision", "eval=vl_embedded", *VL_EVAL])
CHAIN = ["experiment=embedded_vl_chain", "debug=smoke",
         "chain.phases.0.overrides=['model=nano','eval.callback.enabled=false']",  # smoke's own token budget
         *(f"chain.phases.{i}.overrides=[{VL_PHASE}]" for i in (1, 2, 3))]
PHASES = ["0_pretrain", "1_mm_align", "2_mm_render", "3_mm_sft"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("vl_chain")
    proc = run_train(CHAIN, out, shared_cache, fork=True)
    (chain_dir,) = (out / "embedded_vl_chain" / "runs").iterdir()
    return shared_cache, chain_dir, proc


def _weights(export: Path) -> dict[str, torch.Tensor]:
    """All weights of an export by the VL model's parameter names (a text export is the LM alone)."""
    lm = load_file(str(next((export / "language_model").glob("*.safetensors")) if (export / "language_model").is_dir()
                       else next(export.glob("*.safetensors"))))
    weights = {f"language_model.{k}": v for k, v in lm.items()}
    if (export / "vision.safetensors").is_file():
        weights.update(load_file(str(export / "vision.safetensors")))
    return weights


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefix: str) -> bool:
    keys = [k for k in a if k.startswith(prefix)]
    assert keys, prefix
    for key in keys:
        x, y = a[key], b[key]
        rows = min(x.shape[0], y.shape[0]) if x.dim() else None  # the embedding table grew by the <image> row
        if not torch.equal(x[:rows] if rows else x, y[:rows] if rows else y):
            return False
    return True


@pytest.mark.slow
def test_vl_chain_trains_each_phase_from_the_previous_export(chain) -> None:
    _, chain_dir, proc = chain
    exports = json.loads((chain_dir / "chain.json").read_text())
    assert list(exports) == PHASES and "chain finished" in proc.stdout
    for label in PHASES[1:]:
        assert (Path(exports[label]) / "infir_vlm.json").is_file()
        rows = read_metrics(chain_dir / label / "csv" / "metrics.csv")
        losses = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
        assert len(losses) >= 2 and losses[-1] < losses[0], (label, losses)  # the loss falls in every phase
        logged = {k for r in rows for k, v in r.items() if v}
        assert {"eval/screenspot/accuracy", "eval/screenspot/accuracy_blind", "eval/render_math/exact_match",
                "eval/render_text/char_accuracy"} <= logged, label  # each phase ends with the multimodal eval
    plan = json.loads((chain_dir / "1_mm_align" / "run_plan.json").read_text())
    assert Path(plan["tokenizer"]) == chain_dir / "0_pretrain" / "hf_export"  # the LM's own tokenizer


@pytest.mark.slow
def test_each_phase_trains_only_its_modules(chain) -> None:
    _, chain_dir, _ = chain
    text, align, render, sft = (_weights(chain_dir / label / "hf_export") for label in PHASES)
    # alignment: the projector only; the pre-trained LM is untouched
    assert _same(text, align, "language_model.")
    # rendering: vision tower + projector; the LM is still the pre-trained one
    assert _same(align, render, "language_model.") and _same(text, render, "language_model.")
    assert not _same(align, render, "vision_tower.") and not _same(align, render, "projector.")
    # instruction tuning: all parameters
    assert not any(_same(render, sft, prefix) for prefix in ("language_model.", "vision_tower.", "projector."))


@pytest.mark.slow
def test_the_last_export_is_scored_by_the_eval_app(chain, tmp_path) -> None:
    cache, chain_dir, _ = chain
    export = chain_dir / "3_mm_sft" / "hf_export"
    proc = subprocess.run([sys.executable, "-m", "infir.eval", f"model={export}", "eval=vl_embedded",
                           f"paths.cache_dir={cache}", f"out_dir={tmp_path / 'eval'}",
                           "eval.tasks.render_text.limit=4", "eval.tasks.render_math.limit=4",
                           "eval.tasks.screenspot.limit=4"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert set(results["tasks"]) == {"render_text", "render_math", "screenspot"}
    assert results["tasks"]["screenspot"]["metrics"]["n"] == 4.0
