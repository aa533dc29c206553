"""The keys of every config group: the one place that says which keys a composed config may have.

Our own groups list exactly what the code reads (the module named beside each); groups that configure
a library are checked against its constructor (``Target``), and the eval and curation parts reuse the
key sets their own checks define (``infir.eval.checks``, ``infir.sandbox``, ``FastTextParams``). A key
no code reads is a typo, not a setting: ``model.hidden_sise: 320`` used to train the default model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields as dataclass_fields
from typing import Any

from infir.config import targets
from infir.config.errors import ConfigError
from infir.config.provenance import where_set
from infir.config.spec import ANY, Keys, ListOf, MapOf, Spec, Switch, Target, Walk, join


def _any(*names: str) -> dict[str, Spec]:
    return dict.fromkeys(names, ANY)


# Keys of the trainer node that are ours, not Lightning's: infir/training/train.py reads them and removes
# them before it builds the Trainer.
TRAINER_OWN_KEYS = ("peak_flops_per_device", "torch_threads")

# infir/models/causal_lm.py (llama_config, build_causal_lm); `name` labels the option in the resolved
# config that infir.compare groups runs by. rope_scaling is handed to transformers as is.
MODEL = Keys("the model keys are", _any(
    "name", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "rms_norm_eps", "tie_word_embeddings", "initializer_range", "max_position_embeddings", "rope_theta",
    "rope_scaling", "vocab_multiple", "attn_implementation",
    # infir/training/speed/ (read by the training module's configure_model)
    "compile", "activation_checkpointing", "loss", "loss_chunk_tokens"))

# infir/training/train.py, phases.py (resolve_phase_lr, apply_trainable), module.py (optimizer),
# schedules.py; smoke_seq_len is read by conf/debug/smoke.yaml.
PHASE = Keys("the phase keys are", {
    **_any("name", "init_from", "seq_len", "smoke_seq_len", "micro_batch_size", "global_batch_size", "trainable",
           "epochs", "document_masking"),
    "optimizer": Keys("the phase.optimizer keys are", _any("lr", "lr_groups", "weight_decay", "betas", "eps", "grad_clip",
                                                           "fused")),
    "schedule": Keys("the phase.schedule keys are", _any("kind", "warmup_steps", "warmup_ratio", "min_lr",
                                                          "min_lr_ratio", "decay_fraction")),
})


def _sft_sources() -> dict[str, Spec]:
    """Each SFT source takes its builder's parameters (infir/data/sources/sft_embedded.py) but ``split``,
    which the data module passes; ``_`` keys are dropped by it."""
    from infir.data.sources.sft_embedded import BUILDER_OF_MIX_SOURCE, BUILDERS

    specs: dict[str, Spec] = {}
    for name, builder in BUILDER_OF_MIX_SOURCE.items():
        accepted = targets.parameters(BUILDERS[builder])
        specs[name] = ANY if accepted is None else Keys(
            f"the SFT source {name} ({BUILDERS[builder].__name__}) takes", _any(*sorted(accepted - {"split"})),
            private=True)
    return specs


SFT_SOURCES = Keys("the SFT sources are", _sft_sources)


def _vl_sources() -> dict[str, Spec]:
    from infir.vision.embedded import BUILDERS

    return dict.fromkeys(BUILDERS, ANY)


VL_SOURCES = Keys("the vision-language sources are", _vl_sources)
TOKEN_SOURCES = MapOf(Target(), "the data_mix sources are")

# infir/training/train.py (_token_mix_data), data/corpus.py, data/curation/app.py (curate,
# max_documents_per_split), data/sft_datamodule.py (kind: sft -> sources, files, val_per_source);
# `name` labels the mix (messages, infir.compare). Token mixes build `sources` with their _target_;
# SFT mixes name embedded conversation builders.
DATA_MIX = Keys("the data_mix keys are", {
    **_any("name", "kind", "weights", "token_budget", "allow_synthetic", "shard_tokens", "val_windows_per_domain",
           "num_workers", "curate", "val_per_source", "max_documents_per_split",
           # conf/data_mix/synth_*.yaml: the synthesis output folder their files come from, and its variant
           "synth_dir", "synth_variant",
           # conf/data_mix/paper.yaml: the folder its sources' local copies lie under and their validation
           # share (read by the sources' interpolations), the stand-in weights (infir/config/checks.py)
           "root", "validation_fraction", "unknown_weights"),
    "sources": Switch(lambda root: {"sft": SFT_SOURCES, "vl": VL_SOURCES}.get((root.get("data_mix") or {}).get("kind"),
                                                                                TOKEN_SOURCES)),
    "files": ListOf(Keys("a data_mix file entry takes", _any("path", "split", "source", "image_root"))),
})

# infir/training/train.py (continued_tokenizer_cfg) and data/corpus.py (prepare_corpus)
TOKENIZER = Keys("the tokenizer keys are", _any("path", "vocab_size", "min_frequency", "train_bytes",
                                                "split_digits"))
# infir/models/vlm/ (tower.TowerSpec, projector.Projector), infir/vision/transforms.py (ImageProcessor) and
# infir/vision/embedded.py (embedded_sets, the builders' parameters); text has only `name`.
MODALITY = Keys("the modality keys are", {
    "name": ANY,
    "vision_tower": Keys("the modality.vision_tower keys are", _any("kind", "name", "checkpoint", "model_args",
                                                                    "feature_layer", "image_size")),
    "projector": Keys("the modality.projector keys are", _any("kind", "pixel_shuffle")),
    "image": Keys("the modality.image keys are", _any("policy", "max_tiles", "size", "mean", "std", "interpolation")),
    "embedded_sets": MapOf(ANY, "the embedded multimodal sets are"),
})
# infir/training/train.py (cache_dir, run_dir); root_dir and output_dir are read by conf/'s interpolations
# (hydra.run.dir, the sweep dir, eval.data_dir) and are the overrides that move every output.
PATHS = Keys("the paths keys are", _any("root_dir", "output_dir", "cache_dir", "run_dir"))

# train() builds every callbacks node, passing checkpoint its dirpath; build_loggers every logger node.
CALLBACKS = MapOf(Target(), "the callbacks are")
LOGGER = MapOf(Target(), "the loggers are")
TRAINER = Target(extra=frozenset(TRAINER_OWN_KEYS))


def _vl_task() -> Spec:
    from infir.eval.checks import VL_TASK_KEYS

    return Keys("a multimodal eval task takes", {**_any(*VL_TASK_KEYS)})


class _VLTasks:
    """``eval.tasks`` of a ``kind: vl`` suite: any task name, each with the multimodal task keys."""

    def check(self, walk: Walk, path: str, value: Any) -> None:
        if isinstance(value, dict):
            spec = _vl_task()
            for name, task in value.items():
                spec.check(walk, join(path, name), task)


VL_EVAL_TASKS = _VLTasks()


class BenchmarkSource:
    """``eval.tasks.<task>.source`` / ``.fewshot``: ``{embedded: <set>, split, <its loader's parameters>}``
    (infir/eval/embedded.py) or ``{path, split}`` (infir/records)."""

    def check(self, walk: Walk, path: str, value: Any) -> None:
        if not isinstance(value, dict):
            return
        if "embedded" in value:
            from infir.eval.embedded import EMBEDDED

            name = value["embedded"]
            if "path" in value:  # e.g. an option that adds `path:` to a source it inherits with `embedded:`
                raise ConfigError(f"{path} sets both embedded ({name!r}, {where_set(f'{path}.embedded')}) and path "
                                  f"({where_set(f'{path}.path')}); a benchmark source reads one of them")
            if name not in EMBEDDED:
                raise ConfigError(f"{path}.embedded: unknown embedded benchmark {name!r}; known: "
                                  f"{', '.join(sorted(EMBEDDED))}")
            accepted = targets.parameters(EMBEDDED[name])
            if accepted is None:
                return
            known_as = f"embedded {name} takes"
            allowed = {"embedded", "split", *accepted}
        else:
            known_as, allowed = "a file source takes", {"path", "split"}
        for key, child in value.items():
            if key not in allowed:
                walk.unknown(join(path, key), child, allowed, known_as)


def _eval_tasks() -> dict[str, Spec]:
    """Task names and keys from infir/eval/checks.py (the eval app's own check)."""
    from infir.eval.checks import TASK_KEYS, TASKS

    task = Keys("an eval task takes", {**_any(*TASK_KEYS), "source": BenchmarkSource(), "fewshot": BenchmarkSource()})
    return dict.fromkeys(TASKS, task)


def _sandbox_keys() -> dict[str, Spec]:
    """infir/eval/suite.py reads workers and cgroups; the rest are SandboxLimits fields."""
    from infir.sandbox.limits import SandboxLimits

    return _any("workers", "cgroups", *(f.name for f in dataclass_fields(SandboxLimits)))


# infir/eval/suite.py (EvalSuite), app.py, callback.py, infir/training/train.py (callback); data_dir is
# read by eval=paper's source paths. `_`-keys hold YAML anchors (_procedural, _champ).
EVAL = Keys("the eval keys are", {
    **_any("name", "mode", "max_new_tokens", "batch_size", "seed", "fewshot_seed", "progress", "allow_code_execution",
           "data_dir", "kind", "blind", "cache_dir"),
    "sandbox": Keys("the eval.sandbox keys are", _sandbox_keys),
    "tasks": Switch(lambda root: VL_EVAL_TASKS if (root.get("eval") or {}).get("kind") == "vl"
                    else Keys("the eval tasks are", _eval_tasks)),
    "nll": Keys("the eval.nll keys are", _any("enabled", "split", "max_per_domain", "max_length")),
    "callback": Keys("the eval.callback keys are", _any("enabled", "every_n_steps", "at_end")),
}, private=True)


def _fasttext_params() -> dict[str, Spec]:
    from infir.data.curation.fasttext_model import FastTextParams

    return _any(*(f.name for f in dataclass_fields(FastTextParams)))


# infir/data/curation/app.py (build_stages passes each stage its name) and train.py; each stage is a
# _target_ node, and a model stage's `params` are FastTextParams.
CURATION = Keys("the curation keys are", {
    **_any("name", "executor", "workers", "docs_per_shard", "fuse_map_stages"),  # ExecutorSpec checks the values
    "ray": Keys("the curation.ray keys are", _any("address")),
    # a recipe's own records (curation=image_text: image-caption pairs), curated instead of the mix's sources
    "source": Target(),
    "stages": MapOf(Target(fields={"params": Keys("fastText params are", _fasttext_params)}),
                    "the curation stages are"),
})

# infir/training/chain.py (experiment=embedded_chain)
CHAIN = Keys("the chain keys are", {
    "phases": ListOf(Keys("a chain phase takes", _any("phase", "overrides"))),
})

# train.py / infir/training/train.py, chain.py and hydra_support.py read these; `hydra` is Hydra's own node
# (hydra.*, hparams_search's sweeper settings), present when a config is composed with it.
TOP_LEVEL = Keys("the top-level keys are", {
    **_any("name", "seed", "resume", "ckpt_path", "export", "optimized_metric", "tags", "group", "sweep_name",
           "hydra"),
    "tokenizer": TOKENIZER, "curation": CURATION, "data_mix": DATA_MIX, "model": MODEL, "modality": MODALITY,
    "phase": PHASE, "trainer": TRAINER, "logger": LOGGER, "callbacks": CALLBACKS, "eval": EVAL, "paths": PATHS,
    "chain": CHAIN,
})

KNOWN_TOP_LEVEL_KEYS = frozenset(TOP_LEVEL.names())


def check_keys(config: Mapping[str, Any], import_heavy: bool) -> Walk:
    """Raise ``ConfigError`` for the first key of ``config`` (plain containers) the schema does not know,
    among the keys the schema writes out; ``.finish()`` the returned walk to check the others (targets and
    key sets read from code, which import modules)."""
    return Walk(config, import_heavy).start(TOP_LEVEL)
