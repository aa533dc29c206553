"""The suite on a tiny random Llama: the settings behind every number land in results.json, and a chat end
token among the stop sequences ends generation as it does in lm-eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from infir.eval.generation import GenerationConfig, generate
from infir.eval.suite import EvalSuite
from infir.models.tokenizer import decode_text, load_tokenizer, train_bpe

CORPUS = ["Question: Tom has 3 apples and buys 4 more. How many apples?\nAnswer: 3 + 4 = 7.\n#### 7\n",
          "The quick brown fox jumps over the lazy dog. 12 + 30 = 42.\n"] * 30
IM_END = "<|im_end|>"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-runs-tok")
    train_bpe(CORPUS, 320, 2, out)
    tokenizer = load_tokenizer(out)
    tokenizer.add_special_tokens({"additional_special_tokens": [IM_END]})
    return tokenizer


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         initializer_range=0.3, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config).eval()


def _suite(**gsm8k) -> EvalSuite:
    return EvalSuite({"max_new_tokens": 4, "batch_size": 4, "tasks": {
        "gsm8k": {"source": {"embedded": "procedural", "split": "heldout_eval"},
                  "fewshot": {"embedded": "procedural", "split": "train", "n": 16}, "limit": 2, **gsm8k},
        "mmlu": {"source": {"embedded": "procedural_choice", "split": "heldout_eval"},
                 "fewshot": {"embedded": "procedural_choice", "split": "train", "n": 128}, "num_fewshot": 2,
                 "method": "loglik", "limit": 3}}})


def _settings(suite: EvalSuite, model, tokenizer, out: Path) -> dict:
    suite.run(model, tokenizer, out)
    return {task: entry["settings"] for task, entry in json.loads((out / "results.json").read_text())["tasks"].items()}


def test_results_json_records_the_settings_that_change_a_number(model, tokenizer, tmp_path: Path) -> None:
    five = _settings(_suite(), model, tokenizer, tmp_path / "a")
    again = _settings(_suite(), model, tokenizer, tmp_path / "b")
    three = _settings(_suite(num_fewshot=3), model, tokenizer, tmp_path / "c")
    assert five == again  # identical configs: identical settings, so the two files are comparable
    assert three["mmlu"] == five["mmlu"]
    assert {k for k in five["gsm8k"] if five["gsm8k"][k] != three["gsm8k"][k]} == {"num_fewshot"}
    gsm8k = five["gsm8k"]
    assert (gsm8k["variant"], gsm8k["mode"], gsm8k["num_fewshot"], gsm8k["sampler"], gsm8k["fewshot_seed"],
            gsm8k["limit"], gsm8k["records"]) == ("gsm8k", "base", 5, "random", 1234, 2, 2)
    assert gsm8k["generation"]["max_new_tokens"] == 4 and gsm8k["generation"]["do_sample"] is False
    assert gsm8k["generation"]["stop"] == ["Question:", "</s>", IM_END]
    assert gsm8k["fewshot_source"]["n"] == 16 and gsm8k["source"]["split"] == "heldout_eval"
    assert gsm8k["prefix_token"]["id"] == tokenizer.eos_token_id and gsm8k["prefix_token"]["policy"].startswith("eos")
    assert (five["mmlu"]["method"], five["mmlu"]["num_fewshot"], five["mmlu"]["sampler"]) == ("loglik", 2, "first_n")
    seeded = _settings(_suite(fewshot_seed=7, max_new_tokens=6), model, tokenizer, tmp_path / "d")["gsm8k"]
    assert (seeded["fewshot_seed"], seeded["generation"]["max_new_tokens"]) == (7, 6)


def test_a_chat_end_special_token_in_the_stops_ends_generation(model, tokenizer) -> None:
    """Decoded text drops special tokens, so "<|im_end|>" can only stop generation by its id."""
    im_end = tokenizer.convert_tokens_to_ids(IM_END)
    calls = []

    def force_im_end(module, args, output):  # the first decode step (after the prefill) emits <|im_end|>
        calls.append(1)
        if len(calls) == 2:
            output.logits[..., im_end] = 1e4
        return output

    handle = model.register_forward_hook(force_im_end)
    try:
        prompt = "Question: Tom has 3 apples and buys 4 more. How many apples?\nAnswer:"
        config = GenerationConfig(max_new_tokens=12, stop=("Question:", "</s>", IM_END), batch_size=1)
        (out,) = generate(model, tokenizer, [prompt], config)
    finally:
        handle.remove()
    assert len(calls) == 2  # the row ended at <|im_end|>: no third forward pass
    calls.clear()
    (first,) = generate(model, tokenizer, [prompt], GenerationConfig(max_new_tokens=1, batch_size=1))
    assert out[0] == first[0] and decode_text(tokenizer, [im_end]) == ""
