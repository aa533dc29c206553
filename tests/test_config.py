"""Bad config values fail before any data or model work, naming the key."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException

from conftest import REPO, run_train
from infir.config import ConfigError, validate_config
from infir.hydra_support import register_resolvers

register_resolvers()


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def test_default_and_paper_shapes_compose_and_validate():
    validate_config(_compose())
    cfg = _compose("model=llama3_2_1b", "trainer=gpu")
    assert (cfg.model.num_hidden_layers, cfg.model.hidden_size, cfg.model.intermediate_size,
            cfg.model.num_attention_heads, cfg.model.num_key_value_heads) == (16, 2048, 8192, 32, 8)
    assert cfg.model.rope_theta == 500000.0 and cfg.model.tie_word_embeddings


@pytest.mark.parametrize("override, key", [
    ("data_mix.token_budget=-5", "data_mix.token_budget"),
    ("phase.micro_batch_size=0", "phase.micro_batch_size"),
    ("phase.optimizer.lr=-1e-3", "phase.optimizer.lr"),
    ("phase.global_batch_size=12", "phase.global_batch_size"),
    ("tokenizer.path=/no/such/tokenizer", "tokenizer.path"),
    ("phase.init_from=hf:/no/such/model", "phase.init_from"),
    ("phase.init_from=imagenet", "phase.init_from"),
    ("resume=/no/such.ckpt", "resume"),
    ("+data_mix.weights.web=-1", "data_mix.weights"),
])
def test_invalid_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(_compose(override))


def test_unknown_group_option_is_rejected_by_name():
    with pytest.raises(MissingConfigException, match="model"):
        _compose("model=llama_7b")


def test_train_py_fails_fast_on_a_negative_budget(tmp_path):
    proc = run_train(["data_mix.token_budget=-1"], tmp_path, tmp_path / "cache", check=False)
    assert proc.returncode != 0
    assert "data_mix.token_budget must be a positive integer" in proc.stderr + proc.stdout
    assert not (tmp_path / "cache").exists(), "data was prepared before the config was validated"
