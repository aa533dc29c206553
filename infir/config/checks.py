"""Value checks that must fail before any data is prepared or a model is built.

Hydra already rejects unknown group options and the schema (``schema.py``) unknown keys; these catch bad
values (non-positive budgets and sizes, inconsistent batch and model shapes, unknown schedule/precision
names, domain weights no source provides, missing paths) with a message that names the offending key.
They read only the composed config and light modules (no torch, Lightning or transformers).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from infir.config.errors import ConfigError
from infir.config.targets import TargetImportError, locate
from infir.training.schedules import KINDS as SCHEDULE_KINDS
from infir.training.speed import COMPILE_MODES, LOSSES

log = logging.getLogger(__name__)

_POSITIVE_INTS = ("data_mix.token_budget", "phase.seq_len", "phase.micro_batch_size", "phase.global_batch_size",
                  "model.hidden_size", "model.num_hidden_layers", "model.num_attention_heads",
                  "model.num_key_value_heads", "model.intermediate_size", "tokenizer.vocab_size",
                  "callbacks.checkpoint.every_n_train_steps", "trainer.val_check_interval",
                  "phase.smoke_seq_len", "data_mix.max_documents_per_split")  # null: unset
_POSITIVE_FLOATS = ("phase.optimizer.lr",)  # or "inherit" (annealing: the previous phase's final LR)
_NON_NEGATIVE = ("phase.optimizer.weight_decay", "phase.optimizer.grad_clip")
_OPTIONAL_STRINGS = ("group", "sweep_name", "ckpt_path")
# Lightning 2.6's accepted `precision` values (lightning/fabric/plugins/precision/precision.py:
# _PRECISION_INPUT_STR, its aliases and ints) plus our `auto` (infir/training/precision.py).
PRECISIONS = ("auto", "transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true",
              "bf16-mixed", "32-true", "64-true", "64", "32", "16", "bf16")


def _get(cfg: DictConfig, key: str):
    return OmegaConf.select(cfg, key, throw_on_missing=True)


def check_values(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` naming the first bad value (``MissingMandatoryValue`` for an unset ``???``);
    the eval tasks are :func:`check_eval_tasks`'s."""
    _check_numbers(cfg)
    if cfg.phase.global_batch_size % cfg.phase.micro_batch_size:
        raise ConfigError(f"phase.global_batch_size={cfg.phase.global_batch_size} must be a multiple of "
                          f"phase.micro_batch_size={cfg.phase.micro_batch_size}")
    _check_model_shape(cfg.model)
    if cfg.phase.schedule.kind not in SCHEDULE_KINDS:
        raise ConfigError(f"phase.schedule.kind must be one of {', '.join(SCHEDULE_KINDS)}; got "
                          f"{cfg.phase.schedule.kind!r}")
    precision = cfg.trainer.get("precision", "auto")
    if str(precision) not in PRECISIONS:
        raise ConfigError(f"trainer.precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    kind = cfg.data_mix.get("kind")
    if kind in ("sft", "vl"):
        if not isinstance(cfg.phase.get("epochs"), int) or cfg.phase.epochs < 1:
            raise ConfigError(f"phase.epochs must be a positive integer for {kind} data, got {cfg.phase.get('epochs')!r}")
    else:
        _check_token_mix(cfg)
    _check_modality(cfg)
    _check_speed(cfg)
    _check_run_labels(cfg)
    _check_paths(cfg)
    _check_chain(cfg)


def _check_numbers(cfg: DictConfig) -> None:
    for key in _POSITIVE_INTS:
        value = _get(cfg, key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    for key in _POSITIVE_FLOATS:
        value = _get(cfg, key)
        if value == "inherit" and key == "phase.optimizer.lr":
            if not str(cfg.phase.init_from).startswith(("hf:", "ckpt:")):
                raise ConfigError("phase.optimizer.lr=inherit needs phase.init_from=hf:<dir> or ckpt:<path>")
            continue
        if not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{key} must be a positive number, got {value!r}")
    for key in _NON_NEGATIVE:
        value = _get(cfg, key)
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise ConfigError(f"{key} must be >= 0, got {value!r}")


def _check_model_shape(model: DictConfig) -> None:
    """The attention shapes transformers would otherwise reject deep inside model construction."""
    hidden, heads = model.hidden_size, model.num_attention_heads
    kv_heads = model.get("num_key_value_heads") or heads  # unset: one KV head per attention head (Llama)
    if hidden % heads:
        raise ConfigError(f"model.hidden_size={hidden} must be a multiple of model.num_attention_heads={heads}")
    if heads % kv_heads:
        raise ConfigError(f"model.num_attention_heads={heads} must be a multiple of "
                          f"model.num_key_value_heads={kv_heads}")
    if (hidden // heads) % 2:  # RoPE rotates pairs of dimensions
        raise ConfigError(f"model.hidden_size={hidden} / model.num_attention_heads={heads} gives an odd head "
                          f"dimension ({hidden // heads}); rotary embeddings need an even one")


def _check_token_mix(cfg: DictConfig) -> None:
    """Pre-training/annealing mixes: weights, a budget of at least one step, domains the sources provide."""
    weights = cfg.data_mix.get("weights")
    if not weights or any(not isinstance(w, (int, float)) or w < 0 for w in weights.values()) \
            or sum(weights.values()) <= 0:
        raise ConfigError(f"data_mix.weights must be non-negative numbers with a positive sum, got "
                          f"{OmegaConf.to_container(weights) if weights else weights}")
    tokens_per_step = cfg.phase.global_batch_size * cfg.phase.seq_len
    if cfg.data_mix.token_budget is not None and cfg.data_mix.token_budget < tokens_per_step:
        raise ConfigError(f"data_mix.token_budget={cfg.data_mix.token_budget} is less than one optimizer step: "
                          f"phase.global_batch_size x phase.seq_len = {tokens_per_step} tokens")
    warmup = cfg.phase.schedule.get("warmup_steps")
    if cfg.data_mix.token_budget is not None and warmup is not None \
            and warmup > cfg.data_mix.token_budget // tokens_per_step:  # the run's step count, as the datamodule's
        raise ConfigError(f"phase.schedule.warmup_steps={warmup} is more than the run's "
                          f"{cfg.data_mix.token_budget // tokens_per_step} steps (data_mix.token_budget / "
                          f"(phase.global_batch_size x phase.seq_len)); lower it or use phase.schedule.warmup_ratio")
    _check_unknown_weights(cfg)
    provided = provided_domains(cfg.data_mix.get("sources") or {})
    if provided is None:
        return  # a source whose domains only its documents tell; corpus preparation checks them
    for domain in weights:
        if domain not in provided:
            raise ConfigError(f"data_mix.weights.{domain}: no source in data_mix.sources provides the {domain!r} "
                              f"domain (they provide: {', '.join(sorted(provided))})")


def _check_unknown_weights(cfg: DictConfig) -> None:
    """``data_mix.unknown_weights`` names the domains whose weight is a stand-in, not a value the paper gives
    (data_mix=paper: PAPER.md §2 lists the sources, not their shares). They train as configured, with a
    warning at every start that says so; each name must be a weighted domain."""
    unknown = cfg.data_mix.get("unknown_weights")
    if not unknown:
        return
    names = list(unknown) if OmegaConf.is_list(unknown) else None
    if names is None or any(not isinstance(n, str) for n in names):
        raise ConfigError(f"data_mix.unknown_weights must be a list of domain names (or []), got {unknown!r}")
    weights = cfg.data_mix.weights
    stray = sorted(set(names) - set(weights))
    if stray:
        raise ConfigError(f"data_mix.unknown_weights names {stray}, which data_mix.weights does not weight "
                          f"(domains: {', '.join(weights)})")
    standins = ", ".join(f"{n}={weights[n]}" for n in names)
    log.warning("data_mix=%s: the weights of %s are stand-ins, not the paper's (unknown, PAPER.md §2): %s. "
                "Set data_mix.weights.<domain>=... and data_mix.unknown_weights=[] once you have chosen them.",
                cfg.data_mix.get("name"), ", ".join(names), standins)


def provided_domains(sources: DictConfig) -> set[str] | None:
    """Domains the configured sources yield, read from their classes' ``domain`` attribute without building
    them; None when a source declares none (e.g. the raw crawl, whose documents carry several)."""
    provided: set[str] = set()
    for name, node in sources.items():
        if node is None:  # a source removed with data_mix.sources.<name>=null
            continue
        domains = _source_domains(f"data_mix.sources.{name}", node)
        if domains is None:
            return None
        provided |= domains
    return provided


def _source_domains(key: str, node: DictConfig) -> set[str] | None:
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if target is None:
        return None
    try:
        cls = locate(str(target))
    except TargetImportError as error:
        raise ConfigError(f"{key}._target_: cannot import {target!r} ({error})") from None
    domain = getattr(cls, "domain", None)
    if isinstance(domain, str):
        return {domain}
    if isinstance(node.get("domain"), str):  # a source whose domain is a parameter (FileSource)
        return {node.domain}
    if isinstance(node.get("source"), DictConfig):  # a wrapper (SplitSelect) takes its source's domain
        return _source_domains(f"{key}.source", node.source)
    return None


def _check_run_labels(cfg: DictConfig) -> None:
    """``tags`` (W&B tags, infir.compare --tag), ``group`` (W&B group), ``sweep_name`` (the multirun folder)."""
    tags = cfg.get("tags")
    if tags is not None and (not OmegaConf.is_list(tags) or any(not isinstance(t, str) for t in tags)):
        raise ConfigError(f"tags must be a list of strings (tags=[a,b]), got "
                          f"{OmegaConf.to_container(tags) if OmegaConf.is_config(tags) else tags!r}")
    for key in _OPTIONAL_STRINGS:
        value = cfg.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{key} must be a string or null, got {value!r}")


def _check_paths(cfg: DictConfig) -> None:
    if cfg.tokenizer.path and not Path(cfg.tokenizer.path).is_dir():
        raise ConfigError(f"tokenizer.path: no such directory: {cfg.tokenizer.path}")
    init = str(cfg.phase.init_from)
    if init.startswith("hf:") and not any((Path(init[3:]) / f).is_file() for f in ("config.json", "infir_vlm.json")):
        raise ConfigError(f"phase.init_from={init}: no HF model directory (config.json) or vision-language "
                          f"export (infir_vlm.json) there")
    if init.startswith("hf:") and (Path(init[3:]) / "infir_vlm.json").is_file() and cfg.modality.name != "vision":
        raise ConfigError(f"phase.init_from={init} is a vision-language export: continue it with modality=vision "
                          f"(its language model alone is {init}/language_model)")
    if init.startswith("ckpt:") and not Path(init[5:]).is_file():
        raise ConfigError(f"phase.init_from={init}: no such checkpoint file")
    if init != "scratch" and not init.startswith(("hf:", "ckpt:")):
        raise ConfigError(f"phase.init_from must be scratch, hf:<dir> or ckpt:<path>, got {init!r}")
    if cfg.resume not in ("auto", "never") and not Path(cfg.resume).is_file():
        raise ConfigError(f"resume must be auto, never or a checkpoint path; no file at {cfg.resume!r}")
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path:  # resume=<path> in lightning-hydra-template's spelling
        if cfg.resume != "auto":
            raise ConfigError(f"set ckpt_path or resume, not both: ckpt_path={ckpt_path} and resume={cfg.resume} "
                              f"(ckpt_path=<file> is resume=<file>)")
        if not Path(ckpt_path).is_file():
            raise ConfigError(f"ckpt_path: no such checkpoint file: {ckpt_path}")


def check_eval_tasks(cfg: DictConfig) -> None:
    """The eval app's own task check (infir/eval/checks.py) on the enabled tasks: each needs a source.
    Apart from the other value checks because it imports the eval package (numpy)."""
    from infir.eval.checks import check_task_config, check_vl_eval_config, enabled_tasks

    try:
        eval_cfg = OmegaConf.to_container(cfg.eval, resolve=True) if cfg.get("eval") is not None else {}
    except InterpolationResolutionError as error:
        raise ConfigError(f"eval: {error}".splitlines()[0]) from None
    try:
        if (eval_cfg or {}).get("kind") == "vl":
            check_vl_eval_config(eval_cfg)
            return
        for name, task_cfg in enabled_tasks(eval_cfg or {}).items():
            check_task_config(name, task_cfg)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _check_chain(cfg: DictConfig) -> None:
    """experiment=embedded_chain: every ``chain.phases[i].phase`` must be an option of conf/phase."""
    from infir.config.provenance import search_dirs

    chain = cfg.get("chain")
    if not chain:
        return
    phases = cfg.chain.get("phases")
    if not OmegaConf.is_list(phases) or not phases:
        raise ConfigError("chain.phases must be a non-empty list of {phase: <name>, overrides: [...]}")
    known = sorted({p.stem for directory in search_dirs() for p in (directory / "phase").glob("*.yaml")})
    for index, step in enumerate(phases):
        name = step.get("phase") if OmegaConf.is_dict(step) else None
        if name not in known:
            raise ConfigError(f"chain.phases[{index}].phase must be one of {', '.join(known)}, got {name!r}")
        overrides = step.get("overrides")
        if overrides is not None and (not OmegaConf.is_list(overrides) or
                                      any(not isinstance(o, str) for o in overrides)):
            raise ConfigError(f"chain.phases[{index}].overrides must be a list of override strings, got "
                              f"{OmegaConf.to_container(overrides) if OmegaConf.is_config(overrides) else overrides!r}")


def _check_speed(cfg: DictConfig) -> None:
    """The model's speed switches and document masking (infir/training/speed/, infir/models/packed_attention.py)."""
    model = cfg.model
    if str(model.get("compile", "eager")) not in COMPILE_MODES:
        raise ConfigError(f"model.compile must be one of {', '.join(COMPILE_MODES)}; got {model.get('compile')!r}")
    loss = str(model.get("loss", "plain"))
    if loss not in LOSSES:
        raise ConfigError(f"model.loss must be one of {', '.join(LOSSES)}; got {model.get('loss')!r}")
    chunk = model.get("loss_chunk_tokens", 4096)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise ConfigError(f"model.loss_chunk_tokens must be a positive integer, got {chunk!r}")
    checkpointing = model.get("activation_checkpointing", False)
    if not isinstance(checkpointing, (bool, int)) or (not isinstance(checkpointing, bool) and checkpointing < 1):
        raise ConfigError(f"model.activation_checkpointing must be true, false or N >= 1 (every N-th decoder "
                          f"layer), got {checkpointing!r}")
    masking = cfg.phase.get("document_masking")
    if masking is not None:
        if not isinstance(masking, bool):
            raise ConfigError(f"phase.document_masking must be true or false, got {masking!r}")
        if cfg.data_mix.get("kind") in ("sft", "vl"):
            raise ConfigError(f"phase.document_masking applies to token mixes (pre-training, annealing); "
                              f"{cfg.data_mix.get('kind')} data is always packed block-causally")


def _check_modality(cfg: DictConfig) -> None:
    """The modality, the data kind and the eval suite must agree: image data needs the vision wrapper, and a
    VL model is scored by the multimodal suite only (the text tasks cannot feed it images)."""
    name, kind = cfg.modality.name, cfg.data_mix.get("kind")
    if name not in ("text", "vision"):
        raise ConfigError(f"modality={name}: choose text or vision")
    if (name == "vision") != (kind == "vl"):
        raise ConfigError(f"modality={name} with data_mix={cfg.data_mix.get('name')} (kind {kind!r}): the vision "
                          f"modality trains on kind vl mixes (the mm_* phases) and text phases on text mixes; "
                          f"set phase=mm_align|mm_render|mm_sft with modality=vision")
    eval_cfg = cfg.get("eval") or {}
    callback = eval_cfg.get("callback") or {}
    if callback.get("enabled") and (eval_cfg.get("kind") == "vl") != (name == "vision"):
        raise ConfigError(f"modality={name} with eval={eval_cfg.get('name')}: use eval=vl_embedded (or another "
                          f"kind: vl suite) for vision runs and a text suite for text runs, or "
                          f"eval.callback.enabled=false")
