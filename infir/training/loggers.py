"""Experiment loggers: CSV always, W&B (offline unless WANDB_MODE says otherwise).

Runs are grouped by experiment name and tagged with their overrides, so a
Hydra multirun sweep appears as one comparable group in W&B.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger, Logger
from omegaconf import DictConfig

from infir.training.run import wandb_run_id

log = logging.getLogger(__name__)


def build_loggers(logger_cfg: DictConfig, run_dir: Path, run_name: str, group: str,
                  tags: Sequence[str], is_rank_zero: bool) -> list[Logger]:
    """Instantiate the configured loggers with this run's directory, name, group, tags and W&B id."""
    loggers: list[Logger] = []
    for node in (logger_cfg or {}).values():
        target = node.get("_target_", "")
        if target.endswith("WandbLogger"):
            run_id = wandb_run_id(run_dir) if is_rank_zero else None
            loggers.append(instantiate(node, save_dir=str(run_dir), name=run_name, group=group, id=run_id,
                                       resume="allow", tags=[t[:64] for t in tags]))
        elif target.endswith("CSVLogger"):
            loggers.append(instantiate(node, save_dir=str(run_dir)))
        else:
            loggers.append(instantiate(node))
    return loggers


def csv_metrics_path(loggers: Sequence[Logger]) -> Path | None:
    for lg in loggers:
        if isinstance(lg, CSVLogger):
            return Path(lg.log_dir) / "metrics.csv"
    return None


def log_resolved_config(loggers: Sequence[Logger], config: dict[str, Any]) -> None:
    for lg in loggers:
        lg.log_hyperparams(config)


def finish_wandb(failed: bool) -> None:
    """Close the W&B run whatever happened, so offline runs are complete and syncable."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)

