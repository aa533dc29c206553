"""Experiment loggers: CSV always, W&B (offline unless WANDB_MODE says otherwise), TensorBoard on request.

Runs are grouped by experiment name and tagged with their overrides, so a
Hydra multirun sweep appears as one comparable group in W&B. Every logger writes
inside the run dir and logs at the optimizer step, so a resumed run continues the
same files (CSV rewritten, W&B run continued, TensorBoard folder appended to).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from infir.training.run import wandb_run_id

log = logging.getLogger(__name__)

StepSource = Callable[[], int]


class _ContinuesKeptHistory:
    """The part the CSV and TensorBoard loggers share: a step source, and the kept history a resumed run
    starts from, which must be handed over before the logger's writer first opens."""

    step_source: StepSource | None = None
    _history: list[dict[str, str]] = []
    _experiment: Any

    def continue_history(self, rows: list[dict[str, str]]) -> None:
        """Start from these rows; call before anything is logged (they are written when the writer opens)."""
        if self._experiment is not None:
            raise RuntimeError(f"continue_history must be called before the {type(self).__name__} is first used")
        self._history = rows

    def _log_step(self, step: int | None) -> int | None:
        return self.step_source() if self.step_source is not None else step


class ResumableCSVLogger(_ContinuesKeptHistory, CSVLogger):
    """A CSVLogger that continues ``metrics.csv`` on resume and writes every row at the optimizer step.

    Lightning's writer deletes an existing ``metrics.csv`` when it starts; the history a resumed run
    keeps (:func:`infir.training.run.kept_history`, read before that) is written back first. Lightning
    logs at its batch counter, one behind the optimizer step inside an epoch; rows are logged at
    ``step_source()`` (the trainer's ``global_step``) so they line up with checkpoint names and eval dirs.
    """

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
        super().log_metrics(metrics, self._log_step(step))


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
        if self._wandb_init.get("anonymous") is None:  # Lightning always passes it; wandb warns on every run
            self._wandb_init.pop("anonymous", None)

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
        for step, metrics in _csv_rows_as_metrics(rows):
            if step >= self.experiment.starting_step:
                self.experiment.log({**metrics, "trainer/global_step": step}, step=step)
                sent += 1
        return sent


class ResumableTensorBoardLogger(_ContinuesKeptHistory, TensorBoardLogger):
    """A TensorBoardLogger that logs at the optimizer step and continues the kept history on resume.

    Its folder is fixed (``<run dir>/tensorboard/``, no ``version_N``), so every attempt of a run appends an
    event file to the same folder. A killed attempt leaves events logged after its checkpoint (logged
    again by the resumed run) and may lose the row the checkpoint carries; so a resumed run starts its
    event file with TensorBoard's restart marker at step 0 (``purge_step=0``: readers drop every earlier
    event) and logs the CSV's kept history first, each row at its own step. The folder then reads as the
    one uninterrupted history the CSV holds, in TensorBoard's Python reader (the marker) and in its data
    server (which drops a series' steps from a re-logged step on).
    """

    def continue_history(self, rows: list[dict[str, str]]) -> None:
        super().continue_history(rows)
        if rows:
            self._kwargs["purge_step"] = 0

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None:
            writer = super().experiment
            for step, metrics in _csv_rows_as_metrics(self._history):
                TensorBoardLogger.log_metrics(self, metrics, step)
            writer.flush()
        return self._experiment

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, self._log_step(step))


def _csv_rows_as_metrics(rows: Sequence[Mapping[str, str]]) -> Iterator[tuple[int, dict[str, float]]]:
    """(step, metrics) of each CSV row (strings) that has a step and at least one value."""
    for row in rows:
        if row.get("step") in (None, ""):
            continue
        metrics = {k: float(v) for k, v in row.items() if k != "step" and v not in (None, "")}
        if metrics:
            yield int(float(row["step"])), metrics


_STEPPED_LOGGERS = (ResumableCSVLogger, ResumableWandbLogger, ResumableTensorBoardLogger)


def build_loggers(logger_cfg: DictConfig, run_dir: Path, run_name: str, group: str,
                  tags: Sequence[str], is_rank_zero: bool, continuing: bool) -> list[Logger]:
    """Instantiate the configured loggers with this run's directory, name, group, tags and W&B id.

    The stock Lightning CSV, W&B and TensorBoard loggers are built as their resumable subclasses (same
    arguments). ``continuing``: the run resumes a checkpoint, so W&B continues the run dir's W&B run.
    TensorBoard writes to ``<run dir>/<name>/`` (``tensorboard`` unless the config names it) with a fixed
    version (``""`` unless set), so a resumed run appends to the same folder instead of a ``version_1``.
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
        elif target == "lightning.pytorch.loggers.TensorBoardLogger":
            kwargs.setdefault("name", "tensorboard")
            if kwargs.get("version") is None:  # Lightning's None means "the next version_N": a new folder per attempt
                kwargs["version"] = ""
            loggers.append(ResumableTensorBoardLogger(**kwargs, save_dir=str(run_dir)))
        else:
            loggers.append(instantiate(node))
    return loggers


def log_at_step(loggers: Sequence[Logger], step_source: StepSource) -> None:
    """Make the resumable loggers log every row at ``step_source()`` (normally the trainer's global step)."""
    for lg in loggers:
        if isinstance(lg, _STEPPED_LOGGERS):
            lg.step_source = step_source


def continue_history(loggers: Sequence[Logger], rows: list[dict[str, str]]) -> None:
    """A resumed run starts from the kept history: the CSV rewrites it, TensorBoard logs it again after a
    restart marker, W&B replays it (:func:`replay_history`)."""
    for lg in loggers:
        if isinstance(lg, (ResumableCSVLogger, ResumableTensorBoardLogger)):
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

