"""``train(cfg)``: the one function behind ``train.py``.

Order matters: validate the config, find a resumable checkpoint, prepare the
(cached) data, build model/module/trainer from config, measure the step-0
baseline, fit, validate at the end, export. W&B is closed whatever happens.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from infir.atomic_files import remove_stale_temp_files
from infir.config import TRAINER_OWN_KEYS, validate_config, validate_targets
from infir.data.curation.app import curated_sources
from infir.data.corpus import prepare_corpus
from infir.data.datamodule import PackedMixtureDataModule
from infir.data.execution import ExecutorSpec
from infir.data.sft_datamodule import build_sft_datamodule
from infir.env import configure_offline_defaults
from infir.hydra_support import naming_overrides
from infir.eval.callback import EvalCallback
from infir.models.causal_lm import build_causal_lm, count_parameters, training_flops_per_token
from infir.models.chat_template import ensure_chat_template
from infir.models.tokenizer import load_tokenizer
from infir.training.export import export_hf, export_vlm
from infir.training.checkpoint_io import AtomicCheckpointIO
from infir.training.console import print_config_tree, quiet_console
from infir.training.distributed import ResumeOnAnyWorldSize, SameRunOnEveryRank, cluster_plugins
from infir.training.loggers import (build_loggers, continue_history, csv_metrics_path, finish_wandb, log_at_step,
                                    log_resolved_config, replay_history)
from infir.training.module import CausalLMModule, VisionLanguageModule
from infir.training.multimodal import vision_language_setup
from infir.training.phases import TRAINING_STATE_FILE, apply_trainable, continued_tokenizer_cfg, resolve_phase_lr
from infir.training.precision import resolve_precision
from infir.training.run import (checkpoint_pending_row, kept_history, last_logged, local_rank,
                                lock_run_dir, readable_checkpoint_step, restore_pending_row,
                                resume_checkpoint, validation_logged_after_checkpoint)
from infir.training.schedules import LRSchedule, warmup_steps_from
from infir.training.throughput import ThroughputMonitor, peak_flops_per_device

log = logging.getLogger(__name__)



def _quiet_non_zero_ranks() -> None:
    """One log file per run: DDP workers (rank > 0) keep console output only."""
    if local_rank() == 0:
        return
    for logger in (logging.getLogger(), logging.getLogger("infir")):
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)


def _run_identity(cfg: DictConfig) -> tuple[Path, str, list[str]]:
    """(run dir, run name, override tags) from Hydra's runtime, or from ``paths.run_dir`` outside Hydra."""
    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        overrides = list(hydra.overrides.task)
        return Path(hydra.runtime.output_dir), hydra.job.override_dirname or "default", overrides
    return Path(cfg.paths.run_dir), "default", []


def run_group(cfg: DictConfig) -> str:
    """The W&B group: ``group`` when set; else ``<name>/<sweep folder>`` in a multirun (each sweep its own
    group), ``<name>/debug-<option>`` for a debug run, and ``<name>`` for a plain single run."""
    if cfg.get("group"):
        return str(cfg.group)
    if not HydraConfig.initialized():
        return str(cfg.name)
    hydra = HydraConfig.get()
    if hydra.mode == RunMode.MULTIRUN:
        return f"{cfg.name}/{Path(hydra.sweep.dir).name}"
    debug = hydra.runtime.choices.get("debug")
    return f"{cfg.name}/debug-{debug}" if debug else str(cfg.name)


def run_tags(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """W&B tags: the user's ``tags`` first, then the overrides that name the run (not paths), each once."""
    return list(dict.fromkeys([*(str(tag) for tag in cfg.get("tags") or []), *naming_overrides(overrides)]))


def _already_finished(cfg: DictConfig, resumed_step: int, max_steps: int, run_dir: Path) -> bool:
    """The checkpoint is the last step and the export (if any) is complete: re-running changes nothing,
    and touching the loggers again would only rewrite their files."""
    return resumed_step >= max_steps and (not cfg.export or (run_dir / "hf_export" / TRAINING_STATE_FILE).is_file())


def _save_final_checkpoint(trainer: L.Trainer, last: Path) -> None:
    """Make ``last.ckpt`` the final step: periodic saves stop at the last multiple of the interval,
    so without this the printed checkpoint lags the export and re-running a finished command would
    retrain the tail. Every rank calls (the strategy writes on rank 0), on rank 0's view of the file: on
    another node a network filesystem may still show the previous ``last.ckpt``, and a rank saving alone
    would wait for the others forever."""
    stale = not (last.exists() and readable_checkpoint_step(last) == trainer.global_step)
    if trainer.strategy.broadcast(stale, src=0):
        trainer.save_checkpoint(str(last))


def _kept_history(loggers: list, resume_from: Path, resumed_step: int, validation_owed: bool) -> list[dict[str, str]]:
    """The CSV rows a run resumed from ``resume_from`` keeps, handed to the loggers before they start
    (Lightning's CSV writer deletes the file when it starts)."""
    metrics_csv = csv_metrics_path(loggers)
    if metrics_csv is None:
        return []
    history, dropped = kept_history(metrics_csv, resumed_step, "val/" if validation_owed else None)
    history = restore_pending_row(history, checkpoint_pending_row(resume_from))
    continue_history(loggers, history)
    log.info("resuming from %s (step %d); kept %d CSV rows, dropped %d logged after the checkpoint%s",
             resume_from, resumed_step, len(history), dropped, " (its validation is re-run)" if validation_owed else "")
    return history


def _token_mix_data(cfg: DictConfig, tokenizer_cfg: dict, run_dir: Path) -> tuple:
    """Pre-training/annealing data: (curated) sources -> tokenizer -> token shards -> mixture batches."""
    sources = curated_sources(cfg)
    corpus = prepare_corpus(sources, dict(cfg.data_mix.weights), tokenizer_cfg, cfg.paths.cache_dir,
                            phase=cfg.phase.name, allow_synthetic=bool(cfg.data_mix.allow_synthetic),
                            shard_tokens=int(cfg.data_mix.shard_tokens),
                            execution=ExecutorSpec.from_config(cfg.curation))
    funnels = {name: s.result.funnel for name, s in sources.items() if getattr(s, "result", None) is not None}
    if funnels and local_rank() == 0:
        (run_dir / "curation_funnel.json").write_text(json.dumps({"recipe": cfg.curation.name, "funnels": funnels},
                                                                 indent=2))
    datamodule = PackedMixtureDataModule(
        corpus, dict(cfg.data_mix.weights), seq_len=cfg.phase.seq_len, micro_batch_size=cfg.phase.micro_batch_size,
        global_batch_size=cfg.phase.global_batch_size, token_budget=cfg.data_mix.token_budget, seed=cfg.seed,
        val_windows_per_domain=cfg.data_mix.val_windows_per_domain, num_workers=cfg.data_mix.num_workers,
        document_masking=bool(cfg.phase.get("document_masking") or False))
    summary = {"tokenizer": str(corpus.tokenizer_dir), "token_streams": str(corpus.streams_dir),
               "documents": corpus.stats["documents"]}
    return datamodule, corpus.tokenizer, summary


def _sft_data(cfg: DictConfig, tokenizer_cfg: dict) -> tuple:
    """SFT data: the continued model's tokenizer (given a chat template) and packed conversations."""
    if not tokenizer_cfg.get("path"):
        raise ValueError("phase=sft continues a trained model: set phase.init_from=hf:<dir>|ckpt:<path> "
                         "(its tokenizer is used) or tokenizer.path")
    tokenizer = ensure_chat_template(load_tokenizer(tokenizer_cfg["path"]))
    datamodule = build_sft_datamodule(cfg.data_mix, cfg.phase, tokenizer, int(cfg.seed))
    return datamodule, tokenizer, {"tokenizer": str(tokenizer_cfg["path"])}


def train(cfg: DictConfig, identity: tuple[Path, str, list[str]] | None = None) -> float:
    """Train one phase as ``cfg`` says; returns ``cfg.optimized_metric``.

    ``identity`` (run dir, run name, tags) replaces Hydra's runtime one when a driver (the phase
    chain) runs several phases inside one Hydra job.
    """
    configure_offline_defaults()
    quiet_console()  # before the Trainer exists: Lightning's console handlers, known library noise
    _quiet_non_zero_ranks()
    validate_config(cfg)
    validate_targets(cfg)  # Trainer/strategy/callback/logger keys: needs Lightning imported, before any data work
    run_dir, run_name, overrides = identity or _run_identity(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    print_config_tree(cfg, save_to=run_dir / "config_tree.log")  # rank 0 only
    _lock = lock_run_dir(run_dir) if local_rank() == 0 else None  # noqa: F841 (held until exit)
    checkpoint_dir = run_dir / "checkpoints"
    if local_rank() == 0:  # checkpoints a kill left half-written (the run dir is locked: no writer is active)
        remove_stale_temp_files(checkpoint_dir, max_depth=0)
    fast_dev_run = bool(cfg.trainer.get("fast_dev_run"))  # debug=fdr: one batch each, nothing saved or resumed
    resume = str(cfg.ckpt_path) if cfg.get("ckpt_path") else str(cfg.resume)  # ckpt_path: the template's spelling
    resume_from, resumed_step = (None, None) if fast_dev_run else \
        resume_checkpoint(resume, checkpoint_dir) or (None, None)
    if cfg.trainer.get("torch_threads"):
        torch.set_num_threads(int(cfg.trainer.torch_threads))
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    tokenizer_cfg = continued_tokenizer_cfg(cfg.tokenizer, str(cfg.phase.init_from))
    vision = cfg.modality.name == "vision"
    model = processor = None
    if vision:  # tokenizer, model and image processor come together (the tokenizer gains <image>)
        datamodule, tokenizer, data_summary, model, processor = vision_language_setup(cfg, tokenizer_cfg)
    elif cfg.data_mix.get("kind") == "sft":
        datamodule, tokenizer, data_summary = _sft_data(cfg, tokenizer_cfg)
    else:
        datamodule, tokenizer, data_summary = _token_mix_data(cfg, tokenizer_cfg, run_dir)

    if resumed_step is not None and _already_finished(cfg, resumed_step, datamodule.max_steps, run_dir):
        print(f"[infir] run already finished ({datamodule.max_steps} steps); nothing to do: {run_dir}", flush=True)
        return last_logged(run_dir / "csv" / "metrics.csv", str(cfg.optimized_metric))

    if model is None:
        model = build_causal_lm(cfg.model, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id,
                                tokenizer.pad_token_id, init_from=str(cfg.phase.init_from))
    schedule_cfg = cfg.phase.schedule
    lr, min_lr_ratio = resolve_phase_lr(cfg.phase)
    schedule = LRSchedule(schedule_cfg.kind, datamodule.max_steps,
                          warmup_steps_from(datamodule.max_steps, schedule_cfg.warmup_steps, schedule_cfg.warmup_ratio),
                          min_lr_ratio, schedule_cfg.decay_fraction)
    tokens_per_step = cfg.phase.global_batch_size * cfg.phase.seq_len
    apply_trainable(model, list(cfg.phase.get("trainable") or ["*"]))
    module_class = VisionLanguageModule if vision else CausalLMModule
    speed = {key: cfg.model[key] for key in ("compile", "activation_checkpointing", "loss", "loss_chunk_tokens")
             if key in cfg.model}
    module = module_class(model, {**cfg.phase.optimizer, "lr": lr}, schedule, datamodule.domains, tokens_per_step,
                          speed=speed)

    trainer_kwargs = {k: v for k, v in cfg.trainer.items() if k not in TRAINER_OWN_KEYS}  # ours, not Trainer args
    precision = resolve_precision(trainer_kwargs.pop("precision"), str(trainer_kwargs.get("accelerator", "auto")))
    is_rank_zero = local_rank() == 0
    loggers = [] if fast_dev_run else \
        build_loggers(cfg.logger, run_dir, run_name, run_group(cfg), run_tags(cfg, overrides), is_rank_zero,
                      continuing=resume_from is not None)
    val_interval = int(cfg.trainer.val_check_interval)
    validation_owed = resume_from is not None and \
        validation_logged_after_checkpoint(resumed_step, val_interval, datamodule.max_steps)
    history = _kept_history(loggers, resume_from, resumed_step, validation_owed) \
        if resume_from is not None and is_rank_zero else []
    callbacks = [instantiate(cfg.callbacks.checkpoint, dirpath=str(checkpoint_dir))]
    callbacks += [instantiate(node) for key, node in cfg.callbacks.items() if key not in ("checkpoint",)]
    callbacks += [SameRunOnEveryRank(run_dir, resume_from, resumed_step), ResumeOnAnyWorldSize()]  # multi-process
    eval_callback = cfg.get("eval", {}).get("callback")
    if eval_callback and eval_callback.enabled:
        callbacks.append(EvalCallback(OmegaConf.to_container(cfg.eval, resolve=True), tokenizer, processor=processor,
                                      every_n_steps=int(eval_callback.every_n_steps),
                                      at_end=bool(eval_callback.at_end), out_dir=run_dir / "eval"))
    failed = True
    try:
        trainer = instantiate(OmegaConf.create(trainer_kwargs), precision=precision, logger=loggers or False,
                              callbacks=callbacks, default_root_dir=str(run_dir), max_steps=datamodule.max_steps,
                              max_epochs=1, check_val_every_n_epoch=None, use_distributed_sampler=False,
                              num_sanity_val_steps=0, plugins=[AtomicCheckpointIO(), *cluster_plugins()])
        log_at_step(loggers, lambda: trainer.global_step)
        per_rank = cfg.phase.micro_batch_size * trainer.world_size
        if cfg.phase.global_batch_size % per_rank:
            raise ValueError(f"phase.global_batch_size={cfg.phase.global_batch_size} is not divisible by "
                             f"phase.micro_batch_size x world size = {per_rank}")
        trainer.accumulate_grad_batches = cfg.phase.global_batch_size // per_rank
        if not fast_dev_run:  # Lightning counts val_check_interval in micro-batches; ours is in optimizer steps
            trainer.val_check_interval = val_interval * trainer.accumulate_grad_batches
        peak, peak_source = peak_flops_per_device(cfg.trainer.get("peak_flops_per_device"), precision,
                                                  cfg.paths.cache_dir)
        flops_per_token = training_flops_per_token(model.language_model if vision else model, cfg.phase.seq_len)
        throughput = ThroughputMonitor(tokens_per_step, flops_per_token, peak, trainer.world_size,
                                       log_every_n_steps=trainer.log_every_n_steps)
        trainer.callbacks.append(throughput)

        params = count_parameters(model)
        summary = {"run_dir": str(run_dir), "parameters": params, "precision": precision,
                   "max_steps": datamodule.max_steps, "tokens_per_step": tokens_per_step,
                   "accumulate_grad_batches": trainer.accumulate_grad_batches, "world_size": trainer.world_size,
                   "peak_flops_per_device": peak, "peak_flops_source": peak_source,
                   "domains": datamodule.describe(), **data_summary}
        if is_rank_zero:
            log.info("run plan:\n%s", json.dumps(summary, indent=2))
            # read by `python -m infir.eval model=<checkpoint>` to rebuild the model and find its tokenizer
            (run_dir / "run_plan.json").write_text(json.dumps(summary, indent=2))
            OmegaConf.save(cfg, run_dir / "resolved_config.yaml", resolve=True)
        if loggers:
            resolved = OmegaConf.to_container(cfg, resolve=True)
            log_resolved_config(loggers, {**resolved, "run": summary})
            replay_history(loggers, history)  # W&B may have lost the killed attempt's tail

        if resume_from is None:
            trainer.validate(module, datamodule=datamodule, verbose=False)  # the step-0 baseline
        elif validation_owed and resumed_step % val_interval == 0:
            # the checkpoint was saved just before this step's validation, which Lightning's restart skips
            log_at_step(loggers, lambda: resumed_step)
            trainer.validate(module, datamodule=datamodule, ckpt_path=str(resume_from), verbose=False)
            log_at_step(loggers, lambda: trainer.global_step)
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None)
        if fast_dev_run:
            metric = float(trainer.callback_metrics[cfg.optimized_metric])
            print(f"\n[infir] fast dev run passed: 1 training and 1 validation batch, {cfg.optimized_metric} = "
                  f"{metric:.4f}; nothing saved (no checkpoint, export or logger)", flush=True)
            failed = False
            return metric
        _save_final_checkpoint(trainer, checkpoint_dir / "last.ckpt")
        if trainer.global_step % val_interval:
            trainer.validate(module, datamodule=datamodule, verbose=False)
        export = export_vlm if vision else export_hf
        extra = {"processor": processor} if vision else {}
        export_dir = export(trainer, module, tokenizer, out_dir=run_dir / "hf_export", phase=str(cfg.phase.name),
                            **extra) if cfg.export else None
        metric = float(trainer.callback_metrics[cfg.optimized_metric])
        if trainer.is_global_zero:
            ckpt = checkpoint_dir / "last.ckpt"
            print(f"\n[infir] finished {trainer.global_step} steps; {cfg.optimized_metric} = {metric:.4f}\n"
                  f"[infir] run dir:     {run_dir}\n"
                  f"[infir] checkpoint:  {ckpt if ckpt.exists() else 'none'}\n"
                  f"[infir] HF export:   {export_dir or 'disabled (export=false)'}\n"
                  f"[infir] CSV metrics: {csv_metrics_path(loggers) or 'disabled'}\n"
                  f"[infir] W&B run:     {run_dir / 'wandb'} (offline: `wandb sync` it to upload)", flush=True)
        failed = False
        return metric
    finally:
        finish_wandb(failed)
