"""The model factory: the paper's 1B shape, init_from, and the FLOPs count behind MFU."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from transformers import LlamaForCausalLM

from conftest import REPO
from infir.models.causal_lm import (build_causal_lm, count_parameters, llama_config, padded_vocab_size,
                                    resolve_attn_implementation, training_flops_per_token)


def _model_cfg(name: str):
    cfg = OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml")
    if "defaults" in cfg:
        cfg = OmegaConf.merge(OmegaConf.load(REPO / "conf" / "model" / "tiny.yaml"),
                              {k: v for k, v in cfg.items() if k != "defaults"})
    return cfg


def test_llama3_2_1b_shape_has_the_published_parameter_count():
    config = llama_config(_model_cfg("llama3_2_1b"), 128_256, 128_000, 128_001, None)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    params = count_parameters(model)
    assert params["total"] == pytest.approx(1.236e9, rel=0.002)  # Llama-3.2-1B: 1,235,814,400
    assert config.rope_parameters["rope_type"] == "llama3" and config.rope_parameters["rope_theta"] == 500000.0
    assert model.config.tie_word_embeddings
    # FLOPs/token: 6 x (non-embedding + tied lm_head matmul) + 12 L d T attention
    expected = 6 * (params["non_embedding"] + 128_256 * 2048) + 12 * 16 * 2048 * 2048
    assert training_flops_per_token(model, 2048) == expected


def test_vocab_is_padded_from_the_tokenizer_size():
    assert padded_vocab_size(8195, 64) == 8256 and padded_vocab_size(128_256, 64) == 128_256
    model = build_causal_lm(_model_cfg("nano"), 1000, 0, 1, 2)
    assert model.config.vocab_size == 1024


def test_init_from_hf_dir_gives_identical_initial_logits(tmp_path):
    source = build_causal_lm(_model_cfg("nano"), 500, 0, 1, 2).eval()
    source.save_pretrained(tmp_path)
    loaded = build_causal_lm(_model_cfg("tiny"), 500, 0, 1, 2, init_from=f"hf:{tmp_path}").eval()
    ids = torch.randint(0, 500, (2, 17))
    with torch.no_grad():
        assert torch.equal(source(ids).logits, loaded(ids).logits)  # the HF dir's shape wins over model=


def test_bad_init_and_attention_settings_name_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="init_from"):
        build_causal_lm(_model_cfg("nano"), 500, 0, 1, 2, init_from=f"hf:{tmp_path}/missing")
    with pytest.raises(ValueError, match="init_from"):
        build_causal_lm(_model_cfg("nano"), 500, 0, 1, 2, init_from="random")
    with pytest.raises(ValueError, match="attn_implementation"):
        resolve_attn_implementation("paged")
    assert resolve_attn_implementation("auto") == "sdpa"  # no CUDA / flash-attn here
