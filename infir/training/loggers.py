"""Experiment loggers: CSV always, W&B (offline unless WANDB_MODE says otherwise).

Runs are grouped by experiment name and tagged with their overrides, so a
Hydra multirun sweep appears as one comparable group in W&B.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from infir.training.run import wandb_run_id

log = logging.getLogger(__name__)

StepSource = Callable[[], int]


class ResumableCSVLogger(CSVLogger):
    """A CSVLogger that continues ``metrics.csv`` on resume and writes every row at the optimizer step.

    Lightning's writer deletes an existing ``metrics.csv`` when it starts; the history a resumed run
    keeps (:func:`infir.training.run.kept_history`, read before that) is written back first. Lightning
    logs at its batch counter, one behind the optimizer step inside an epoch; rows are logged at
    ``step_source()`` (the trainer's ``global_step``) so they line up with checkpoint names and eval dirs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_source: StepSource | None = None
        self._history: list[dict[str, str]] = []

    def continue_history(self, rows: list[dict[str, str]]) -> None:
        """Start from these rows; call before anything is logged (the file is rewritten on first use)."""
        if self._experiment is not None:
            raise RuntimeError("continue_history must be called before the CSV logger is first used")
        self._history = rows

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None:
            writer = super().experiment
            if self._history:
                writer.metrics = [dict(row) for row in self._history]
                writer.save()
        return self._experiment

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, self.step_source() if self.step_source is not None else step)


class ResumableWandbLogger(WandbLogger):
    """A WandbLogger whose history steps (``_step``) are the optimizer step, continuous across resumes.

    Lightning's logger lets W&B count its own ``_step`` from 0 in every process and logs two records at
    one trainer step; here each row is logged with ``step=`` so records at one step merge and a resumed
    segment continues the numbering. On resume it replays the history the CSV kept: a kill -9 loses the
    tail W&B had not yet written, so the resumed segment alone holds the complete history. Steps the
    W&B run already has (``starting_step``, known online after a resume) are not sent again.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_source: StepSource | None = None

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        step = self.step_source() if self.step_source is not None else step
        if step is None:
            self.experiment.log(dict(metrics))
        elif step >= self.experiment.starting_step:
            self.experiment.log({**metrics, "trainer/global_step": step}, step=step)

    @rank_zero_only
    def replay(self, rows: Sequence[Mapping[str, str]]) -> int:
        """Log CSV rows (strings) at their own steps; returns how many were sent."""
        sent = 0
        for row in rows:
            if row.get("step") in (None, ""):
                continue
            step = int(float(row["step"]))
            metrics = {k: float(v) for k, v in row.items() if k != "step" and v not in (None, "")}
            if metrics and step >= self.experiment.starting_step:
                self.experiment.log({**metrics, "trainer/global_step": step}, step=step)
                sent += 1
        return sent


def build_loggers(logger_cfg: DictConfig, run_dir: Path, run_name: str, group: str,
                  tags: Sequence[str], is_rank_zero: bool, continuing: bool) -> list[Logger]:
    """Instantiate the configured loggers with this run's directory, name, group, tags and W&B id.

    The stock Lightning CSV and W&B loggers are built as their resumable subclasses (same arguments).
    ``continuing``: the run resumes a checkpoint, so W&B continues the run dir's W&B run.
    """
    loggers: list[Logger] = []
    for node in (logger_cfg or {}).values():
        target = node.get("_target_", "")
        kwargs = {k: v for k, v in node.items() if k != "_target_"}
        if target == "lightning.pytorch.loggers.WandbLogger":
            run_id = wandb_run_id(run_dir, continuing) if is_rank_zero else None
            loggers.append(ResumableWandbLogger(**kwargs, save_dir=str(run_dir), name=run_name, group=group,
                                                id=run_id, resume="allow" if continuing else None,
                                                tags=[t[:64] for t in tags]))
        elif target == "lightning.pytorch.loggers.CSVLogger":
            loggers.append(ResumableCSVLogger(**kwargs, save_dir=str(run_dir)))
        else:
            loggers.append(instantiate(node))
    return loggers


def log_at_step(loggers: Sequence[Logger], step_source: StepSource) -> None:
    """Make the resumable loggers log every row at ``step_source()`` (normally the trainer's global step)."""
    for lg in loggers:
        if isinstance(lg, (ResumableCSVLogger, ResumableWandbLogger)):
            lg.step_source = step_source


def continue_history(loggers: Sequence[Logger], rows: list[dict[str, str]]) -> None:
    """A resumed run starts from the kept history: the CSV rewrites it, W&B replays it."""
    for lg in loggers:
        if isinstance(lg, ResumableCSVLogger):
            lg.continue_history(rows)


def replay_history(loggers: Sequence[Logger], rows: list[dict[str, str]]) -> int:
    """Send the kept history to W&B (after its run started); returns the rows sent."""
    return sum(lg.replay(rows) or 0 for lg in loggers if isinstance(lg, ResumableWandbLogger))


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

