"""SFT through the real training path, and the pretrain -> anneal -> SFT chain in one command."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import REPO, read_metrics, run_train, start_train
from infir.data.sft import IGNORE_INDEX, collate, encode_conversation, pack
from infir.models.chat_template import ensure_chat_template
from infir.models.tokenizer import load_tokenizer, train_bpe
from infir.training.module import CausalLMModule
from infir.training.phases import TRAINING_STATE_FILE, apply_trainable
from infir.training.schedules import LRSchedule

CHAIN = ["experiment=embedded_chain", "debug=smoke", "model=nano", "data_mix.token_budget=10240",
         "chain.phases.2.overrides=['eval.mode=instruct','phase.epochs=1']"]  # SFT: debug=smoke's own seq_len


def _conversation(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": question}, {"role": "assistant", "content": answer}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("sft-tok")
    train_bpe(["What is 2 + 3? The answer is 5.", "def f(x):\n    return x * 2\n"] * 50, 300, 2, out)
    tokenizer = ensure_chat_template(load_tokenizer(out))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
    config._attn_implementation = "sdpa"
    return tokenizer, LlamaForCausalLM(config).eval()


def test_packed_sft_loss_in_the_training_module_is_the_mean_over_assistant_tokens_alone(tiny) -> None:
    """The module's loss on a packed batch = masked cross-entropy of each sample run by itself."""
    tokenizer, model = tiny
    samples = [encode_conversation(tokenizer, _conversation(q, a), max_len=200)
               for q, a in [("What is 2 + 3?", "The answer is 5."), ("Double x.", "def f(x):\n    return x * 2"),
                            ("Say hi.", "hi")]]
    seq_len = sum(len(ids) for ids, _ in samples) + 5
    batch = collate(pack(samples, seq_len, tokenizer.pad_token_id))
    assert batch["input_ids"].shape[0] == 1  # all three share one pack
    module = CausalLMModule(model, {"lr": 1e-3}, LRSchedule("constant", 10), ["sft"], seq_len)
    with torch.no_grad():
        packed_loss = torch.nn.functional.cross_entropy(module(batch["input_ids"], batch["segment_ids"], batch["position_ids"])[0], batch["labels"][0],
                                                        ignore_index=IGNORE_INDEX, reduction="sum")
        alone = sum(F.cross_entropy(model(input_ids=torch.tensor([ids])).logits[0], torch.tensor(labels),
                                    ignore_index=IGNORE_INDEX, reduction="sum") for ids, labels in samples)
    assert packed_loss == pytest.approx(float(alone), rel=1e-5)
    assistant = sum(sum(label != IGNORE_INDEX for label in labels) for _, labels in samples)
    assert int((batch["labels"] != IGNORE_INDEX).sum()) == assistant


def test_trainable_patterns_freeze_the_rest(tiny) -> None:
    _, model = tiny
    trainable = apply_trainable(model, ["lm_head.*", "model.embed_tokens.*"])
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert trainable > 0 and all(".layers." in n or "norm" in n for n in frozen)
    with pytest.raises(ValueError, match="phase.trainable"):
        apply_trainable(model, ["nothing.*"])
    apply_trainable(model, ["*"])


@pytest.fixture(scope="module")
def chain(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("chain")
    proc = run_train(CHAIN, out, shared_cache, fork=True)
    (chain_dir,) = (out / "embedded_chain" / "runs").iterdir()
    return out, chain_dir, proc


def test_chain_runs_every_phase_from_the_previous_export(chain) -> None:
    _, chain_dir, proc = chain
    exports = json.loads((chain_dir / "chain.json").read_text())
    assert list(exports) == ["0_pretrain", "1_anneal", "2_sft"]
    for label, export in exports.items():
        state = json.loads((Path(export) / TRAINING_STATE_FILE).read_text())
        assert state["phase"] == label.split("_", 1)[1]
    anneal_plan = json.loads((chain_dir / "1_anneal" / "run_plan.json").read_text())
    sft_plan = json.loads((chain_dir / "2_sft" / "run_plan.json").read_text())
    assert Path(anneal_plan["tokenizer"]) == chain_dir / "0_pretrain" / "hf_export"
    assert Path(sft_plan["tokenizer"]) == chain_dir / "1_anneal" / "hf_export"
    assert "chain finished" in proc.stdout
    rows = read_metrics(chain_dir / "2_sft" / "csv" / "metrics.csv")
    assert {"val/loss/procedural", "val/loss/champ", "val/loss/code"} <= set(rows[0])


def test_sft_export_loads_in_plain_transformers_and_chats(chain) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, chain_dir, _ = chain
    export = chain_dir / "2_sft" / "hf_export"
    tokenizer = AutoTokenizer.from_pretrained(export, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(export, local_files_only=True).eval()
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt.endswith("<|assistant|>\n")
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]

    from infir.eval.loading import load_model  # the eval app's checkpoint path gets the same chat template

    from_ckpt, ckpt_tokenizer = load_model(chain_dir / "2_sft" / "checkpoints" / "last.ckpt", device="cpu")
    assert ckpt_tokenizer.chat_template == tokenizer.chat_template
    with torch.no_grad():
        assert from_ckpt(**ids).logits.shape == model(**ids).logits.shape


def test_rerunning_the_chain_skips_finished_phases_and_resumes_an_unfinished_one(chain, shared_cache) -> None:
    out, chain_dir, _ = chain
    stamps = {label: (chain_dir / label / "hf_export" / "model.safetensors").stat().st_mtime_ns
              for label in ("0_pretrain", "1_anneal", "2_sft")}
    again = run_train(CHAIN, out, shared_cache, fork=True)
    assert again.stdout.count("already finished") + again.stderr.count("already finished") == 3
    assert all((chain_dir / label / "hf_export" / "model.safetensors").stat().st_mtime_ns == stamp
               for label, stamp in stamps.items())
    os.remove(chain_dir / "2_sft" / "hf_export" / TRAINING_STATE_FILE)  # as if killed before the export finished
    resumed = run_train(CHAIN, out, shared_cache, fork=True)
    log = resumed.stdout + resumed.stderr
    assert log.count("already finished") == 2 and "resuming from" in log
    assert (chain_dir / "2_sft" / "hf_export" / TRAINING_STATE_FILE).is_file()


def test_sft_under_ddp_runs_one_process_steps_and_a_killed_run_resumes_each_rank_at_its_batch(chain, tmp_path,
                                                                                              shared_cache) -> None:
    """SFT on 2 gloo processes (micro batch 4 each) against 1 process (4 x 2 accumulation): the same planned and
    executed optimizer steps, the same gradient norm at every step (each step reads the same 8 packs) and the
    same validation losses, with the DDP run killed at step 4 (the step across the epoch boundary) and resumed
    from step 3's checkpoint (before half-way: the case a remaining-batches epoch length ended early; step 3's
    validation re-run under DDP). An odd number of batches per epoch: before, each rank left an epoch's odd
    last batch out (the DDP run stopped short of its plan) and a resume restarted each rank at steps x the
    single-process accumulation."""
    _, chain_dir, _ = chain
    sft = ["debug=smoke", "model=nano", "phase=sft", f"phase.init_from=hf:{chain_dir / '0_pretrain' / 'hf_export'}",
           "phase.epochs=2", "logger=csv", "data_mix.sources.stdlib=null",  # the stdlib scan: ~7 s per process
           "data_mix.max_documents_per_split=28", "trainer.val_check_interval=3", "trainer.log_every_n_steps=1",
           "callbacks.checkpoint.every_n_train_steps=3"]
    marker = tmp_path / "killed.marker"
    kill = f"+callbacks.kill={{_target_:kill_points.KillAt,step:4,hook:train_batch_end,marker:{marker}}}"
    ddp = [*sft, "trainer=ddp", "trainer.devices=2", kill]
    env = {"PYTHONPATH": str(REPO / "tests")}
    one = start_train(sft, tmp_path / "one", shared_cache, fork=True)  # meanwhile, on the other core
    try:
        killed = run_train(ddp, tmp_path / "two", shared_cache, check=False, env=env, fork=True)
    finally:
        one.wait()
    assert killed.returncode == -signal.SIGKILL and marker.exists(), killed.stderr[-3000:]
    resumed = run_train(ddp, tmp_path / "two", shared_cache, env=env, fork=True)
    assert "(step 3)" in resumed.stdout + resumed.stderr  # "resuming from ... (step 3)"

    def run(root: Path) -> tuple[int, int, list[dict[str, str]]]:
        (run_dir,) = (root / "embedded_pretrain" / "runs").iterdir()
        planned = json.loads((run_dir / "run_plan.json").read_text())["max_steps"]
        executed = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        return planned, executed["global_step"], read_metrics(run_dir / "csv" / "metrics.csv")

    (planned, executed, a), (ddp_planned, ddp_executed, b) = run(tmp_path / "one"), run(tmp_path / "two")
    # 2 epochs of an odd number of micro-batches, in steps of 2: step (planned - 1) / 2 straddles the epochs
    assert planned % 2 == 1, f"{planned} steps: pick a max_documents_per_split that gives an odd number"
    assert ddp_planned == ddp_executed == executed == planned and f"finished {planned} steps" in resumed.stdout
    for key in ("val/loss", "train/grad_norm"):
        series = [[(int(r["step"]), float(r[key])) for r in rows if r.get(key)] for rows in (a, b)]
        assert [s for s, _ in series[1]] == [s for s, _ in series[0]] and len(series[0]) >= 4, (key, series)
        for (step, x), (_, y) in zip(*series):
            assert y == pytest.approx(x, rel=1e-3), (key, step)
