"""Run the eval suite during training: every N optimizer steps and at the end.

Metrics go to every attached logger (CSV and W&B) as ``eval/<task>/<metric>`` at the current
global step; per-sample outputs go to ``<run>/eval/step<N>/``. Only rank 0 evaluates (the other
ranks wait at their next collective). Under FSDP2 every rank first takes part in gathering the weights,
rank 0 evaluates an unsharded copy, and the others wait at a barrier.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from transformers import PreTrainedTokenizerBase

from infir.eval.suite import EvalSuite, flat_metrics
from infir.training.speed.compile import eager_calls
from infir.training.speed.fsdp2 import full_model_state_dict, is_sharded, unsharded_copy

log = logging.getLogger(__name__)


class EvalCallback(L.Callback):
    """Few-shot evaluation inside ``trainer.fit``; the suite (records, sandbox) is built once, at setup."""

    def __init__(self, eval_cfg: Mapping[str, Any], tokenizer: PreTrainedTokenizerBase, every_n_steps: int,
                 at_end: bool = True, out_dir: Path | None = None, processor: Any = None) -> None:
        if every_n_steps < 0:
            raise ValueError(f"eval.callback.every_n_steps must be >= 0 (0 = only at the end), got {every_n_steps}")
        self.eval_cfg = eval_cfg
        self.tokenizer = tokenizer
        self.every_n_steps = every_n_steps
        self.at_end = at_end
        self.out_dir = out_dir
        self.processor = processor  # the image processor of a vision-language run (eval kind: vl)
        self._suite: Any = None
        self._last_step = -1
        self._eval_copy: Any = None  # FSDP2: rank 0's unsharded model, reused across evaluations

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Build the suite before training starts, so a bad eval config fails before any step."""
        if trainer.is_global_zero and self._suite is None:
            if self.eval_cfg.get("kind") == "vl":
                from infir.eval.vl.suite import VLEvalSuite

                self._suite = VLEvalSuite(self.eval_cfg)
            else:
                self._suite = EvalSuite(self.eval_cfg)

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        self._last_step = step
        model = pl_module.model
        sharded = is_sharded(model)
        if sharded:  # FSDP2: every rank gathers; rank 0 evaluates a plain copy while the others wait
            weights = full_model_state_dict(model)
            if trainer.is_global_zero and self._suite is not None:
                if self._eval_copy is None:  # built once (a full model init), refreshed from the shards each time
                    self._eval_copy = unsharded_copy(model, weights, pl_module.device)
                else:
                    self._eval_copy.load_state_dict(weights, strict=True)
                model = self._eval_copy
            del weights
        try:
            if trainer.is_global_zero and self._suite is not None:
                self._run_suite(trainer, model, step)
        finally:
            if sharded:
                trainer.strategy.barrier("eval_callback")

    def _run_suite(self, trainer: L.Trainer, model: Any, step: int) -> None:
        out = self.out_dir / f"step{step:07d}" if self.out_dir is not None else None
        extra = {"processor": self.processor} if self.eval_cfg.get("kind") == "vl" else {}
        with eager_calls():  # a compiled model would recompile for every decode length
            results = self._suite.run(model, self.tokenizer, out, **extra)
        metrics = flat_metrics(results)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
        log.info("eval at step %d: %s", step, {k: round(v, 4) for k, v in metrics.items()})

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if self.every_n_steps and step > 0 and step % self.every_n_steps == 0 and step != self._last_step:
            self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.at_end and trainer.global_step != self._last_step:
            self._evaluate(trainer, pl_module)
