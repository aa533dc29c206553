"""The speed switches (infir/training/speed/): they change how fast and in how much memory, not what is learnt.

Chunked loss and activation checkpointing must give the plain computation's loss and gradients; a compiled
run must track the eager run within bf16 tolerance and resume exactly.
"""

from __future__ import annotations

import signal

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from conftest import REPO, comparable_row, read_metrics, run_train, start_train
from infir.training.module import IGNORE_INDEX, CausalLMModule
from infir.training.schedules import LRSchedule
from infir.training.speed.chunked_loss import chunked_next_token_loss
from infir.training.speed.compile import decoder_layers


def _labels(shape: tuple[int, int], vocab: int, seed: int = 0) -> torch.Tensor:
    """Targets with ignored stretches: a prompt-like prefix, padding at the end, scattered single positions."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, vocab, shape, generator=g)
    labels[0, :7] = IGNORE_INDEX
    labels[-1, -5:] = IGNORE_INDEX
    labels[torch.rand(shape, generator=g) < 0.1] = IGNORE_INDEX
    return labels


@pytest.mark.parametrize("chunk", [1, 13, 64, 10_000])  # one position, uneven chunks, even chunks, one chunk
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_chunked_loss_equals_the_plain_loss_and_its_gradients(chunk, reduction):
    torch.manual_seed(0)
    hidden = torch.randn(3, 64, 32, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(250, 32, dtype=torch.float64, requires_grad=True)
    labels = _labels((3, 64), 250)
    plain = F.cross_entropy((hidden @ weight.T).flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX,
                            reduction=reduction)
    chunked = chunked_next_token_loss(hidden, weight, labels, chunk_tokens=chunk, reduction=reduction)
    torch.testing.assert_close(chunked, plain, rtol=1e-12, atol=0)
    for a, b in zip(torch.autograd.grad(chunked, (hidden, weight)), torch.autograd.grad(plain, (hidden, weight))):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
    with torch.no_grad():  # per position, for validation sums
        per_position = chunked_next_token_loss(hidden, weight, labels, chunk_tokens=chunk, reduction="none")
        expected = F.cross_entropy((hidden @ weight.T).flatten(0, 1), labels.flatten(),
                                   ignore_index=IGNORE_INDEX, reduction="none")
    torch.testing.assert_close(per_position, expected, rtol=1e-12, atol=0)


def test_chunked_loss_with_every_target_ignored_is_nan_like_the_plain_loss():
    hidden, weight = torch.randn(4, 8, requires_grad=True), torch.randn(10, 8)
    labels = torch.full((4,), IGNORE_INDEX)
    plain = F.cross_entropy(hidden @ weight.T, labels, ignore_index=IGNORE_INDEX)
    assert plain.isnan() and chunked_next_token_loss(hidden, weight, labels, 2).isnan()


def _tiny_llama(attn: str = "sdpa") -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, use_cache=False)
    config._attn_implementation = attn
    return LlamaForCausalLM(config)


def _loss_and_grads(speed: dict, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, int]]:
    """Loss, parameter gradients, how many positions the LM head projected and how often the decoder layers
    ran in one training step."""
    module = CausalLMModule(_tiny_llama(), {"lr": 1e-3}, LRSchedule("constant", 1), ["d"], 64, speed=speed)
    module.configure_model()
    module.train()
    calls = {"lm_head": 0, "layers": 0}

    def counted(key, forward):
        def call(hidden, *args, **kwargs):
            calls[key] += hidden.shape[:-1].numel() if key == "lm_head" else 1  # positions projected / calls
            return forward(hidden, *args, **kwargs)
        return call

    # counted by wrapping forward: the recomputation in backward runs forward but not module hooks
    module.model.lm_head.forward = counted("lm_head", module.model.lm_head.forward)
    for layer in decoder_layers(module.model):
        layer.mlp.forward = counted("layers", layer.mlp.forward)
    loss = module._loss(batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in module.model.named_parameters()}, calls


def test_training_module_loss_and_gradients_do_not_depend_on_the_speed_switches():
    """fp32: the chunked loss (tied LM head = embedding, so its gradient adds to the embedding's) and
    per-layer activation checkpointing give the plain module's loss and every parameter gradient, while
    the chunked loss never calls the full LM head and checkpointing re-runs the checkpointed layers."""
    g = torch.Generator().manual_seed(1)
    batch = {"input_ids": torch.randint(0, 320, (2, 48), generator=g), "labels": _labels((2, 48), 320),
             "segment_ids": torch.tensor([[0] * 20 + [1] * 28, [0] * 40 + [-1] * 8])}
    plain_loss, plain, calls = _loss_and_grads({}, batch)
    assert calls == {"lm_head": 96, "layers": 3}
    cases = [({"loss": "chunked", "loss_chunk_tokens": 17}, {"lm_head": 0, "layers": 3}),
             ({"activation_checkpointing": True}, {"lm_head": 96, "layers": 6}),
             ({"activation_checkpointing": 2}, {"lm_head": 96, "layers": 5}),  # layers 0 and 2 recomputed
             ({"loss": "chunked", "loss_chunk_tokens": 32, "activation_checkpointing": True},
              {"lm_head": 0, "layers": 6})]
    for speed, expected_calls in cases:
        loss, grads, calls = _loss_and_grads(speed, batch)
        assert calls == expected_calls, speed
        torch.testing.assert_close(loss, plain_loss, rtol=1e-6, atol=0)
        for name, grad in grads.items():
            torch.testing.assert_close(grad, plain[name], rtol=1e-5, atol=1e-7, msg=lambda m: f"{speed} {name}: {m}")


def test_regional_compile_compiles_each_decoder_layer_and_keeps_parameter_names():
    model = _tiny_llama()
    names = [n for n, _ in model.named_parameters()]
    module = CausalLMModule(model, {"lr": 1e-3}, LRSchedule("constant", 1), ["d"], 64, speed={"compile": "regional"})
    module.configure_model()
    layers = decoder_layers(model)
    assert len(layers) == 3 and all(layer._compiled_call_impl is not None for layer in layers)
    assert model._compiled_call_impl is None  # the model itself runs eagerly around them
    assert [n for n, _ in model.named_parameters()] == names  # checkpoints and the HF export are unchanged
    with pytest.raises(ValueError, match="model.loss must be one of"):
        CausalLMModule(model, {"lr": 1e-3}, LRSchedule("constant", 1), ["d"], 64, speed={"loss": "fused"})


# --------------------------------------------------------------------- end-to-end: compile, FSDP2, resume

# 20 optimizer steps of 8 x 64 tokens, validated and checkpointed every 10 / 5 steps
SHORT = ["debug=smoke", "model=nano", "data_mix.token_budget=10240", "trainer.val_check_interval=10",
         "callbacks.checkpoint.every_n_train_steps=5"]
COMPILED = [*SHORT, "model.compile=regional"]
# fp32 both ways: a sharded run must reproduce the single-process one up to reduction order
FP32_EVAL = [*SHORT, "trainer.precision=32-true", "eval.callback.enabled=true", "eval.callback.every_n_steps=10",
             "eval.tasks.mmlu.limit=16", "eval.tasks.gsm8k.limit=2", "eval.tasks.gsm8k.max_new_tokens=8",
             "eval.tasks.math.enabled=false"]
FSDP2 = [*FP32_EVAL, "trainer=fsdp2", "trainer.accelerator=cpu", "trainer.devices=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_cache):
    """Every run the end-to-end tests compare, scheduled so the 2 cores stay busy (each run is 1 thread):
    eager, compiled and single-process fp32 side by side; then FSDP2 over 2 processes next to a compiled run
    killed mid-way (step 13, after the step-10 checkpoint) and resumed; then an FSDP2 run killed and resumed.
    Killed runs are forked: the kill takes their own process group. Returns {name: run root}."""
    out = tmp_path_factory.mktemp("speed")
    env = {"PYTHONPATH": str(REPO / "tests")}

    def kill(name: str) -> str:
        marker = out / f"{name}.marker"
        return f"+callbacks.kill={{_target_:kill_points.KillAt,step:13,hook:train_batch_end,marker:{marker}}}"

    def killed_then_resumed(args: list[str], name: str) -> None:
        killed = run_train([*args, kill(name)], out / name, shared_cache, check=False, env=env, fork=True)
        assert killed.returncode == -signal.SIGKILL and (out / f"{name}.marker").exists(), killed.stderr[-2000:]
        run_train([*args, kill(name)], out / name, shared_cache, env=env, fork=True)

    first = [start_train(args, out / name, shared_cache) for name, args in
             (("eager", SHORT), ("compiled", COMPILED), ("single", FP32_EVAL))]
    for run in first:
        run.wait()
    sharded = start_train(FSDP2, out / "sharded", shared_cache)
    try:
        killed_then_resumed(COMPILED, "compiled_killed")
    finally:
        sharded.wait()
    killed_then_resumed(FSDP2, "sharded_killed")
    return {name: out / name for name in ("eager", "compiled", "single", "sharded", "compiled_killed",
                                          "sharded_killed")} | {"root": out}


def _run_dir(root):
    (run_dir,) = (root / "embedded_pretrain" / "runs").iterdir()
    return run_dir


def _metrics(root) -> list[dict[str, str]]:
    return read_metrics(_run_dir(root) / "csv" / "metrics.csv")


def _series(rows: list[dict[str, str]], key: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]


def test_compiled_run_tracks_the_eager_run_within_bf16_tolerance(runs):
    log = (_run_dir(runs["compiled"]) / "train.log").read_text()
    assert "model.compile=regional: compiled 2 decoder layers" in log
    eager, compiled = _metrics(runs["eager"]), _metrics(runs["compiled"])
    for key in ("train/loss", "val/loss"):
        a, b = _series(eager, key), _series(compiled, key)
        assert [s for s, _ in a] == [s for s, _ in b] and len(a) >= 3, key
        for (step, x), (_, y) in zip(a, b):
            assert y == pytest.approx(x, rel=2e-2), (key, step)
    assert _series(compiled, "val/loss")[-1][1] < _series(compiled, "val/loss")[0][1]  # and it learns


def test_killed_compiled_run_resumes_to_the_uninterrupted_history(runs):
    straight, again = _metrics(runs["compiled"]), _metrics(runs["compiled_killed"])
    assert [comparable_row(r) for r in again] == [comparable_row(r) for r in straight]


# ------------------------------------------------------------------------------------------- FSDP2

def test_fsdp2_two_processes_match_one_process_and_evaluate_the_gathered_model(runs):
    single, sharded = _metrics(runs["single"]), _metrics(runs["sharded"])
    # validation (all-reduced over ranks) at steps 0, 10, 20; train/loss is each rank's own micro-batch
    for key in ("val/loss", "val/loss/code", "val/loss/math"):
        a, b = _series(single, key), _series(sharded, key)
        assert [s for s, _ in a] == [s for s, _ in b] and a, key
        for (step, x), (_, y) in zip(a, b):
            assert y == pytest.approx(x, rel=1e-4), (key, step)
    # the eval callback ran on the gathered weights (at step 10 building rank 0's copy, at 20 refreshing it):
    # the same scores as the unsharded model's
    for key in ("eval/mmlu/accuracy", "eval/mmlu/prob_correct", "eval/gsm8k/strict_accuracy"):
        a, b = _series(single, key), _series(sharded, key)
        assert [s for s, _ in a] == [s for s, _ in b] == [10, 20], key
        for (_, x), (_, y) in zip(a, b):
            assert y == pytest.approx(x, abs=1e-3), key


def test_fsdp2_checkpoints_are_sharded_and_the_export_is_their_gathered_weights(runs):
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    from transformers import AutoModelForCausalLM

    out = runs["root"]
    run_dir = _run_dir(runs["sharded"])
    last = run_dir / "checkpoints" / "last.ckpt"
    assert last.is_dir() and sorted(p.name for p in last.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    dcp_to_torch_save(last, out / "consolidated.pt")
    saved = torch.load(out / "consolidated.pt", weights_only=False)["state_dict"]
    export = AutoModelForCausalLM.from_pretrained(run_dir / "hf_export", local_files_only=True)
    exported = export.state_dict()
    weights = {k.removeprefix("model."): v for k, v in saved.items()}
    assert set(weights) - {"lm_head.weight"} == set(exported) - {"lm_head.weight"}
    for name, tensor in weights.items():
        assert torch.equal(exported[name], tensor), name


def test_killed_fsdp2_run_resumes_from_its_sharded_checkpoint_to_the_uninterrupted_history(runs):
    straight, again = _metrics(runs["sharded"]), _metrics(runs["sharded_killed"])
    assert [comparable_row(r) for r in again] == [comparable_row(r) for r in straight]
