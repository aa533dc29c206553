"""Bad config values fail before any data or model work (and before torch loads), naming the key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException

from conftest import REPO, run_train
from infir.config import PRECISIONS, ConfigError, validate_config
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


def test_the_paper_vision_shape_composes_to_a_buildable_so400m_tower():
    """modality=vision_so400m inherits the embedded default's keys; image_size, which only fits the embedded
    conv tower, must not reach the ViT: built on the meta device, it is the
    paper's 27 x 27 patches of width 1152 (PAPER.md §5)."""
    import torch

    from infir.models.vlm.tower import TowerSpec, VisionTower

    node = _compose("experiment=infir_vl_1_6b_align").modality.vision_tower
    assert node.image_size is None
    with torch.device("meta"):
        tower = VisionTower(TowerSpec.from_config(node))
    assert (tower.image_size, tower.grid, tower.hidden_size) == (384, (27, 27), 1152)


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
    # issue 10, point 17: each of these used to pass here and fail only after data preparation (or never)
    ("phase.schedule.kind=bogus", "phase.schedule.kind"),
    ("phase.schedule.warmup_steps=2000", "phase.schedule.warmup_steps=2000 is more than the run's 195 steps"),
    ("trainer.precision=bf17", "trainer.precision"),
    ("+data_mix.weights.web=1", "data_mix.weights.web"),      # a domain no source provides
    ("data_mix.token_budget=4000", "data_mix.token_budget"),  # below one step of 16 x 256 tokens
    ("model.hidden_size=100", "model.hidden_size"),           # head_dim 25: RoPE needs an even one
    ("model.hidden_size=250", "model.hidden_size"),           # not a multiple of the 4 heads
    ("model.num_key_value_heads=3", "model.num_key_value_heads"),
    ("+foo=1", "foo"),                                        # an unknown top-level key
    ("+trainer_typo.devices=2", "trainer_typo"),
    ("data_mix.sources.stdlib._target_=no.such.Source", "data_mix.sources.stdlib._target_"),
    ("phase=anneal", "phase.init_from"),                      # a `???` left unset
    ("data_mix.sources.stdlib=null", "data_mix.weights.code"),  # the only code source removed
    # keys added by the sweep/logging work
    ("phase.smoke_seq_len=0", "phase.smoke_seq_len"),
    ("data_mix.max_documents_per_split=-3", "data_mix.max_documents_per_split"),
    ("ckpt_path=/no/such.ckpt", "ckpt_path"),
    ("tags=oops", "tags"),
    ("group=[a,b]", "group"),
    ("+chain.phases=[{phase:anneel}]", "chain.phases[0].phase"),
    # the speed switches (issue 14)
    ("model.compile=true", "model.compile must be one of eager, whole, regional"),
    ("model.loss=fused", "model.loss must be one of plain, chunked"),
    ("model.loss_chunk_tokens=0", "model.loss_chunk_tokens"),
    ("model.activation_checkpointing=0", "model.activation_checkpointing"),
    ("phase.document_masking=maybe", "phase.document_masking"),
])
def test_invalid_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        validate_config(_compose(override))


def test_ckpt_path_is_resume_by_another_name(tmp_path):
    """ckpt_path=<file> passes; setting it beside a resume other than auto is ambiguous."""
    checkpoint = tmp_path / "last.ckpt"
    checkpoint.write_bytes(b"")
    validate_config(_compose(f"ckpt_path={checkpoint}"))
    with pytest.raises(ConfigError, match="set ckpt_path or resume, not both"):
        validate_config(_compose(f"ckpt_path={checkpoint}", "resume=never"))


def test_unknown_group_option_is_rejected_by_name():
    with pytest.raises(MissingConfigException, match="model"):
        _compose("model=llama_7b")


def test_train_py_fails_fast_on_a_negative_budget(tmp_path):
    proc = run_train(["data_mix.token_budget=-1"], tmp_path, tmp_path / "cache", check=False)
    assert proc.returncode != 0
    assert "data_mix.token_budget must be a positive integer" in proc.stderr + proc.stdout
    assert not (tmp_path / "cache").exists(), "data was prepared before the config was validated"


def _hf_dir(tmp_path: Path) -> str:
    (tmp_path / "config.json").write_text("{}")
    return f"phase.init_from=hf:{tmp_path}"


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")))
def test_every_shipped_experiment_passes_the_checks(experiment, tmp_path):
    """The known top-level keys and the new checks accept every recipe the repo ships."""
    overrides = [f"experiment={experiment}"]
    if "anneal" in experiment or "sft" in experiment or experiment.startswith("infir_vl_"):
        overrides.append(_hf_dir(tmp_path))
    validate_config(_compose(*overrides))


@pytest.mark.parametrize("overrides", [["phase=anneal"], ["phase=sft"], ["data_mix=raw_crawl"], ["trainer=ddp"],
                                       ["trainer=fsdp2"], ["model.compile=regional", "model.loss=chunked",
                                                           "model.activation_checkpointing=2",
                                                           "phase.document_masking=true"],
                                       ["trainer.precision=16"], ["debug=smoke"], ["data_mix.weights.code=0.2"]],
                         ids="+".join)
def test_valid_variants_pass(overrides, tmp_path):
    if overrides[0].startswith("phase="):
        overrides = [*overrides, _hf_dir(tmp_path)]
    validate_config(_compose(*overrides))


def test_precision_names_match_lightning():
    """The light check must accept exactly what Lightning's Trainer accepts (plus our `auto`)."""
    from lightning.fabric.plugins.precision.precision import (_PRECISION_INPUT_INT, _PRECISION_INPUT_STR,
                                                              _PRECISION_INPUT_STR_ALIAS)

    lightning = {str(v) for kind in (_PRECISION_INPUT_INT, _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS)
                 for v in get_args(kind)}
    assert set(PRECISIONS) == lightning | {"auto"}


_PROBE = """
import runpy, sys
sys.argv = ["train.py", *sys.argv[1:]]
try:
    runpy.run_path("train.py", run_name="__main__")
finally:
    heavy = sorted(m for m in ("torch", "lightning", "transformers") if m in sys.modules)
    print("heavy modules loaded:", heavy, file=sys.stderr)
"""


@pytest.mark.parametrize("override, message", [
    ("phase.schedule.kind=bogus", "phase.schedule.kind must be one of cosine, wsd, linear, constant; got 'bogus'"),
    ("trainer.precision=bf17", "trainer.precision must be one of"),
    ("+data_mix.weights.web=1", "data_mix.weights.web: no source in data_mix.sources provides the 'web' domain"),
    ("data_mix.token_budget=4000", "data_mix.token_budget=4000 is less than one optimizer step"),
    ("model.hidden_size=100", "model.hidden_size=100 / model.num_attention_heads=4 gives an odd head dimension"),
    ("+foo=1", "unknown config key 'foo'"),
    # the schema: a key of our own group, and one of a light _target_ (the class is imported to read it)
    ("+model.hidden_sise=3", "unknown config key 'model.hidden_sise' from the command line override "
                             "+model.hidden_sise=3 (did you mean 'model.hidden_size'?)"),
    ("+data_mix.sources.champ.seeed=1",
     "'data_mix.sources.champ.seeed' from the command line override +data_mix.sources.champ.seeed=1 "
     "(did you mean 'data_mix.sources.champ.seed'?); infir.data.sources.champ.ChampSource takes: "),
])
def test_train_py_rejects_bad_values_in_one_line_before_heavy_imports(override, message, tmp_path):
    """issue 10, point 17: one line naming the key, exit status 2, no traceback, no data, torch never loaded."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, override, f"paths.output_dir={tmp_path / 'out'}",
                           f"paths.cache_dir={tmp_path / 'cache'}"], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[infir] config error: ") and message in lines[0], lines
    assert lines[1] == "heavy modules loaded: []"
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "cache").exists(), "data was prepared before the config was validated"
