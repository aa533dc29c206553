"""What a training run prints: the composed config once, one line per event, and progress without a bar.

Three pieces, each called once by ``train()``:

* :func:`print_config_tree`: the composed config as a tree (rank 0), optionally saved as plain text;
* :func:`quiet_console`: every Lightning log line once (Hydra's root handler and Lightning's own
  handler both printed it), and the known-noise tips and warnings of our pinned libraries hidden;
* :class:`ProgressLine`: a periodic ``step 20/80 (25%) | train/loss ... | eta ...`` line when no
  progress bar is drawn (``callbacks.progress.refresh_rate: 0`` in ``debug=smoke``, logs, CI).
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from infir.training.run import launcher_rank

log = logging.getLogger(__name__)

# Config groups in the order a reader follows a run: data, model, training, then bookkeeping.
# Top-level scalars (name, seed, resume, ...) come first; groups not listed follow in config order.
GROUP_ORDER = ("data_mix", "curation", "tokenizer", "model", "modality", "phase", "trainer", "logger",
               "callbacks", "eval", "paths")


def is_rank_zero() -> bool:
    """Rank known from the launcher's environment (before and outside a Trainer); see
    :func:`infir.training.run.launcher_rank` (torchrun, srun, Lightning's launcher, on any node)."""
    return launcher_rank() == 0


# ---------------------------------------------------------------------------------------------- config tree

def _scalar_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value if value else "''"
    return str(value)


def _leaf(parent: DictConfig | ListConfig, key: Any) -> Text:
    """A value resolved where it resolves; a missing one as ``???``, an unresolvable one as its own text."""
    node = parent._get_node(key)
    if node is None or node._is_missing():
        return Text("???", style="red")
    try:
        value = parent[key]
    except Exception:  # noqa: BLE001 (any resolver error: ${hydra:...} outside Hydra, an unknown resolver)
        return Text.assemble((str(node._value()), "yellow"), (" (unresolved)", "dim"))
    if isinstance(value, (DictConfig, ListConfig)):  # an interpolation that resolves to a container
        return Text(str(OmegaConf.to_container(value, resolve=False)))
    return Text(_scalar_text(value), style="green" if isinstance(value, str) else "magenta")


def _is_scalar_list(node: ListConfig) -> bool:
    return all(not isinstance(node._get_node(i), (DictConfig, ListConfig)) for i in range(len(node)))


def _add_children(tree: Tree, node: DictConfig | ListConfig) -> None:
    keys = list(range(len(node))) if isinstance(node, ListConfig) else list(node.keys())
    for key in keys:
        _add_node(tree, node, key)


def _add_node(tree: Tree, parent: DictConfig | ListConfig, key: Any) -> None:
    label = f"[{key}]" if isinstance(key, int) else str(key)
    child = parent._get_node(key)
    is_container = isinstance(child, (DictConfig, ListConfig)) and not child._is_missing() \
        and not child._is_none() and not child._is_interpolation()
    if not is_container:
        tree.add(Text.assemble((label, "bold"), ": ", _leaf(parent, key)))
    elif len(child) == 0:
        tree.add(Text.assemble((label, "bold"), ": ", "[]" if isinstance(child, ListConfig) else "{}"))
    elif isinstance(child, ListConfig) and _is_scalar_list(child):
        items = [_leaf(child, i) for i in range(len(child))]
        tree.add(Text.assemble((label, "bold"), ": [", Text(", ").join(items), "]"))
    else:
        _add_children(tree.add(Text(label, style="bold cyan")), child)


def _ordered_keys(cfg: DictConfig) -> list[str]:
    keys = [str(k) for k in cfg.keys() if k != "hydra"]  # Hydra's own node, when composed with it

    def is_group(key: str) -> bool:
        node = cfg._get_node(key)
        return isinstance(node, DictConfig) and not node._is_missing() and not node._is_none() \
            and not node._is_interpolation()

    scalars = [k for k in keys if not is_group(k)]
    groups = [k for k in GROUP_ORDER if k in keys and is_group(k)]
    return scalars + groups + [k for k in keys if is_group(k) and k not in groups]


def config_tree(cfg: DictConfig) -> Tree:
    """The composed config as a ``rich`` tree (never raises on missing or unresolvable values)."""
    tree = Tree(Text("config", style="bold"), guide_style="dim")
    for key in _ordered_keys(cfg):
        _add_node(tree, cfg, key)
    return tree


def render_plain(renderable: Any, width: int = 160) -> str:
    """``renderable`` as plain text (no colour codes): what a log file or ``config_tree.log`` holds."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False, highlight=False).print(renderable)
    return buffer.getvalue()


def print_config_tree(cfg: DictConfig, save_to: Path | None = None) -> None:
    """Print the composed config once (rank 0 only) as a tree, and save it as plain text to ``save_to``.

    Why: the run's whole configuration, values resolved, is the first thing a reader of a log needs;
    printed before any work starts, it also shows what an override actually changed.
    """
    if not is_rank_zero():
        return
    tree = config_tree(cfg)
    console = Console(highlight=False)
    if not console.is_terminal:  # logs: wide lines, no wrapping mid-value
        console = Console(highlight=False, width=max(console.width, 160))
    console.print(tree)
    sys.stdout.flush()
    if save_to is not None:
        save_to = Path(save_to)
        save_to.parent.mkdir(parents=True, exist_ok=True)
        save_to.write_text(render_plain(tree))


# ---------------------------------------------------------------------------------------------- quiet console

# Lightning's loggers. `lightning/__init__.py` always gives the `lightning` logger its own stderr handler
# ("INFO: ..."), and `lightning.pytorch`/`lightning.fabric` give themselves one when the root logger had no
# handler at their import; with Hydra's root console handler (conf/hydra/default.yaml job_logging) a
# record then printed twice: once by Lightning's handler on stderr, once by Hydra's on stdout.
_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")
# Where Lightning's rank_zero_info records come from (the loggers its tips are emitted on).
_LIGHTNING_INFO_LOGGERS = tuple(f"{name}.utilities.rank_zero" for name in
                                ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric"))


class _DropLightningTips(logging.Filter):
    """Lightning's "💡 Tip: ... try installing litlogger / litmodels" lines: advertisements for Lightning's
    cloud products, printed on every Trainer (litlogger) or checkpoint callback (litmodels). They say
    nothing about the run, and installing them is not needed for anything here: safe to hide."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


_TIP_FILTER = _DropLightningTips()


def _is_console_handler(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


def _one_handler_per_lightning_record() -> None:
    """With a root console handler (Hydra's), Lightning's records propagate to it (and to train.log) and
    Lightning's own console handlers go; without one (no logging configured), Lightning's stay as they are."""
    if not any(_is_console_handler(h) for h in logging.getLogger().handlers):
        return
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if _is_console_handler(handler):
                logger.removeHandler(handler)
        logger.propagate = True


def _hide_known_noise() -> None:
    for name in _LIGHTNING_INFO_LOGGERS:
        logger = logging.getLogger(name)
        if _TIP_FILTER not in logger.filters:
            logger.addFilter(_TIP_FILTER)
    # torch (2.13 here) deprecates `LeafSpec`; Lightning's own lightning/pytorch/utilities/_pytree.py (pinned 2.6)
    # still builds one on every fit, so torch warns about Lightning's code, not ours: nothing a user can
    # change, and it goes away when Lightning updates. Matched by its exact text, so other torch
    # FutureWarnings still show.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)
    # Lightning warns on every Trainer when a `srun` binary is on PATH (a SLURM login or compute node) but
    # the process was not started by srun. That only matters for a SLURM job with several tasks, where a
    # multi-process launch without srun hangs; for a single-task job or a login node it is noise, so it
    # is hidden only there (SLURM_NTASKS unset or 1).
    ntasks = os.environ.get("SLURM_NTASKS", "").strip()
    if not ntasks.isdigit() or int(ntasks) <= 1:
        warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")
    # Every mid-run resume: Lightning cannot see that our data modules restart at the checkpoint's optimizer step
    # themselves (state_dict: steps or sequences consumed; infir/data/iteration.py, infir/data/mixture.py), so
    # it warns that results may be unreliable; tests/test_train_e2e.py's kill test shows they are identical.
    warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the epoch ended "
                            r"and your dataloader is not resumable")
    # Under DDP Lightning recommends `sync_dist=True` for every epoch-level metric, one line per key.
    # CausalLMModule's val/ metrics are already summed across ranks (strategy.reduce in
    # on_validation_epoch_end) before they are logged, so for them the advice is a false positive;
    # the same advice for any other key still shows.
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self\.log\('val/[^']*', \.\.\., "
                            r"sync_dist=True\)` when logging on epoch level in distributed setting")
    # Hugging Face progress bars (transformers' "Writing model shards" at every HF export, "Loading
    # weights" at every from_pretrained; hub download bars, offline here anyway): each a \r-redrawn
    # bar for a sub-second step, clutter in a log. The work they track is reported by our own lines.
    # A user who sets HF_HUB_DISABLE_PROGRESS_BARS themselves keeps their choice.
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") is None:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when huggingface_hub is first imported
        if "huggingface_hub" in sys.modules:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        if "transformers" in sys.modules:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()


def quiet_console() -> None:
    """Make every Lightning log line appear once and hide the known-noise tips and warnings (idempotent).

    Call after Hydra configured logging (inside the task function) and before the Trainer is built.
    Real warnings still show: each filter matches one message by its text.
    """
    _one_handler_per_lightning_record()
    _hide_known_noise()


# ---------------------------------------------------------------------------------------------- progress line

def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _count(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{suffix}"
    return f"{value:.0f}"


def _metric(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return number if math.isfinite(number) else None


def stdout_is_terminal() -> bool:
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def progress_bar_visible(trainer: L.Trainer) -> bool:
    """Whether an enabled progress bar (Lightning's TQDM and Rich bars both draw on stdout) is on a terminal."""
    bar = trainer.progress_bar_callback
    if bar is None or not isinstance(bar, ProgressBar) or not bar.is_enabled:
        return False
    return stdout_is_terminal()


class ProgressLine(L.Callback):
    """One log line at most every ``every_n_steps`` optimizer steps or ``every_s`` seconds, whichever comes
    first, when no progress bar is visible (rank 0 only); plus a line at fit start and end and around
    each validation. Why: a run with the bar off (``debug=smoke``, logs, CI) otherwise says nothing for
    minutes, and a bar's ``\\r`` redraws make unreadable log files.

    ``step 20/80 (25%) | train/loss 5.123 | lr 2.9e-03 | 4.1k tok/s | eta 0:40``
    """

    def __init__(self, every_n_steps: int = 10, every_s: float = 30.0) -> None:
        if isinstance(every_n_steps, bool) or int(every_n_steps) < 1:
            raise ValueError(f"callbacks.progress_line.every_n_steps={every_n_steps!r}: expected an integer >= 1")
        if isinstance(every_s, bool) or not float(every_s) > 0:
            raise ValueError(f"callbacks.progress_line.every_s={every_s!r}: expected seconds > 0")
        self.every_n_steps = int(every_n_steps)
        self.every_s = float(every_s)
        self._total: int | None = None
        self._last_step = -1
        self._line_step = 0
        self._line_time = 0.0
        self._line_tokens: float | None = None
        self._clock_step: int | None = None  # the rate (and eta) counts from the first optimizer step
        self._clock_start = 0.0
        self._fit_start = 0.0
        self._paused = 0.0
        self._val_start: float | None = None

    def _active(self, trainer: L.Trainer) -> bool:
        return trainer.is_global_zero and is_rank_zero() and not progress_bar_visible(trainer)

    @staticmethod
    def _total_steps(trainer: L.Trainer) -> int | None:
        if trainer.max_steps and trainer.max_steps > 0:
            return int(trainer.max_steps)
        try:
            total = float(trainer.estimated_stepping_batches)
        except Exception:  # noqa: BLE001 (no dataloader yet, an iterable without length)
            return None
        return int(total) if math.isfinite(total) else None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # not on_fit_start: a resumed run's step is restored between the two
        if not self._active(trainer):
            return
        self._total = self._total_steps(trainer)
        now = time.perf_counter()
        self._fit_start = self._line_time = now
        self._paused = 0.0
        self._clock_step = None
        self._last_step = self._line_step = trainer.global_step
        self._line_tokens = None
        start = trainer.global_step
        total = f"{self._total} steps" if self._total else "until the data ends"
        resumed = f", resuming at step {start}" if start else ""
        log.info("training %s%s; a progress line every %d steps or %.0f s", total, resumed, self.every_n_steps,
                 self.every_s)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step or not self._active(trainer):  # gradient accumulation: no optimizer step yet
            return
        self._last_step = step
        now = time.perf_counter()
        metrics = trainer.callback_metrics
        if self._clock_step is None:  # first step: compilation, allocation; the rate starts after it
            self._clock_step, self._clock_start, self._paused = step, now, 0.0
            self._line_tokens = _metric(metrics, "train/tokens_seen")
        due = step - self._line_step >= self.every_n_steps or now - self._line_time >= self.every_s
        if due and (self._total is None or step < self._total):  # the last step is reported by the end line
            log.info("%s", self._progress_text(step, now, metrics))
            self._line_step, self._line_time = step, now
            self._line_tokens = _metric(metrics, "train/tokens_seen")

    def _progress_text(self, step: int, now: float, metrics: dict[str, Any]) -> str:
        parts = [f"step {step}/{self._total} ({100 * step / self._total:.0f}%)" if self._total else f"step {step}"]
        loss, lr = _metric(metrics, "train/loss"), _metric(metrics, "train/lr")
        if loss is not None:
            parts.append(f"train/loss {loss:.3f}")
        if lr is not None:
            parts.append(f"lr {lr:.1e}")
        tokens = _metric(metrics, "train/tokens_seen")
        window = now - self._line_time
        if tokens is not None and self._line_tokens is not None and window > 0 and tokens > self._line_tokens:
            parts.append(f"{_count((tokens - self._line_tokens) / window)} tok/s")
        elif (rate := _metric(metrics, "perf/tokens_per_s")) is not None:
            parts.append(f"{_count(rate)} tok/s")
        trained = now - self._clock_start - self._paused
        done = step - (self._clock_step or 0)
        if self._total and done > 0 and trained > 0:
            parts.append(f"eta {_duration((self._total - step) * trained / done)}")
        return " | ".join(parts)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self._active(trainer):
            return
        self._val_start = time.perf_counter()
        log.info("validating at step %d ...", trainer.global_step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self._active(trainer) or self._val_start is None:
            return
        elapsed = time.perf_counter() - self._val_start
        self._val_start = None
        if self._clock_step is not None:
            self._paused += elapsed  # validation time is not training time: the eta ignores it
        self._line_time += elapsed  # nor is it a reason for a progress line
        metrics = trainer.callback_metrics
        shown = [f"{key} {value:.4f}" for key in ("val/loss", "val/ppl", "val/bpb")
                 if (value := _metric(metrics, key)) is not None]
        domains = sorted(k for k in metrics if re.fullmatch(r"val/loss/[^/]+", str(k)))
        shown += [f"{key.removeprefix('val/loss/')} {value:.3f}" for key in domains
                  if (value := _metric(metrics, key)) is not None]
        log.info("validation at step %d (%s): %s", trainer.global_step, _duration(elapsed),
                 " | ".join(shown) if shown else "no val/ metrics logged")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active(trainer):
            return
        metrics = trainer.callback_metrics
        loss = _metric(metrics, "train/loss")
        total = f"/{self._total}" if self._total else ""
        log.info("training done: step %d%s in %s%s", trainer.global_step, total,
                 _duration(time.perf_counter() - self._fit_start),
                 f" | train/loss {loss:.3f}" if loss is not None else "")
