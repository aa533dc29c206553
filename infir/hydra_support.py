"""OmegaConf resolvers used by conf/ (registered before Hydra composes): run, sweep and result folder names."""

from __future__ import annotations

import hashlib
import os
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

# A folder name may hold 255 bytes on common filesystems; a name is only cut (and hashed) past this.
_MAX_NAME = 200
# Characters a run dir name keeps: those both Hydra's override grammar (unquoted values) and a POSIX
# shell accept as plain text, so a printed path passes back as `model=<path>` without quotes.
# `-` and `+` are the key/value and item separators set in conf/hydra/default.yaml.
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_.:+-")
# Overrides that never name a run or a sweep (bookkeeping, paths, loggers); conf/hydra/default.yaml reads
# it as hydra.job.config.override_dirname.exclude_keys (``${infir_non_naming_keys:}``) for the run dirs.
NON_NAMING_KEYS = ("resume", "ckpt_path", "tags", "group", "sweep_name", "logger", "hydra.verbose",
                   "paths.output_dir", "paths.cache_dir", "paths.root_dir")


def run_name(override_dirname: str) -> str:
    """Folder/W&B name of a run from its overrides; ``default`` without any.

    ``/`` becomes ``_``; any other character Hydra or the shell would read specially becomes ``_`` too,
    and then (or when the name is longer than a folder name may safely be) a hash of the overrides keeps
    different runs apart.
    """
    if not override_dirname:
        return "default"
    safe = override_dirname.replace("/", "_")
    cleaned = "".join(char if char in _NAME_CHARS else "_" for char in safe)
    if cleaned == safe and len(cleaned) <= _MAX_NAME:
        return cleaned
    return cleaned[: _MAX_NAME - 13] + "-" + hashlib.sha1(override_dirname.encode()).hexdigest()[:12]


def naming_overrides(overrides: Iterable[str]) -> list[str]:
    """The overrides that say what a run is (not where it writes or how it is logged)."""
    return [o for o in overrides if o.lstrip("+~").split("=", 1)[0] not in NON_NAMING_KEYS]


def sweep_name(task_overrides: Iterable[str]) -> str:
    """A multirun's folder name from the command line that launched it, e.g. ``model-tiny_nano+seed-1_2``.

    The same command maps to the same folder (so re-running a sweep resumes its jobs), a different sweep
    of the same experiment to another one. Sweep lists' commas read as ``_``.
    """
    return run_name("+".join(o.replace("=", "-", 1).replace(",", "_") for o in sorted(naming_overrides(task_overrides))))


# Set by SweepFolderCallback while a multirun runs: the folder every job of it resolves.
SWEEP_FOLDER_ENV = "INFIR_SWEEP_FOLDER"


def sweep_folder_of(config: Any) -> str:
    """``sweep_name`` when set, else :func:`sweep_name` of the config's command-line overrides."""
    chosen = OmegaConf.select(config, "sweep_name", default=None)
    if chosen:
        return run_name(str(chosen))
    return sweep_name(OmegaConf.select(config, "hydra.overrides.task", default=None) or [])


def _sweep_folder(*, _root_: Any) -> str:
    """The multirun folder; inside a running multirun the one its launching command got.

    Each job's config is composed from its own overrides (``model=tiny``, not ``model=tiny,nano``), so
    a job cannot name its sweep by itself: SweepFolderCallback publishes the launching config's folder.
    """
    return os.environ.get(SWEEP_FOLDER_ENV) or sweep_folder_of(_root_)


class SweepFolderCallback(Callback):
    """Hydra callback (conf/hydra/default.yaml): names the sweep folder from the launching command line
    before the sweeper creates it, for every job of the sweep."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ[SWEEP_FOLDER_ENV] = sweep_folder_of(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ.pop(SWEEP_FOLDER_ENV, None)


def path_name(path: str) -> str:
    """Folder name for results about a model path, e.g. ``embedded_pretrain_runs_default_hf_export``.

    Readable from the path's last components, and distinct for every model: the last four components of two
    exports often agree (``runs/default/hf_export`` of two experiments), so a short hash of the absolute
    path is appended whenever the readable part leaves components out.
    """
    absolute = Path(os.path.abspath(os.path.expanduser(str(path))))
    parts = [part for part in absolute.parts if part not in ("", "/")]
    readable = parts[-5:]
    name = run_name("_".join(readable))
    if len(readable) == len(parts):
        return name
    return f"{name[:_MAX_NAME - 13]}-{hashlib.sha1(str(absolute).encode()).hexdigest()[:12]}"


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("infir_path_name"):
        OmegaConf.register_new_resolver("infir_path_name", path_name)
    if not OmegaConf.has_resolver("infir_run_name"):
        OmegaConf.register_new_resolver("infir_run_name", run_name)
    if not OmegaConf.has_resolver("infir_sweep_folder"):
        OmegaConf.register_new_resolver("infir_sweep_folder", _sweep_folder)
    if not OmegaConf.has_resolver("infir_non_naming_keys"):
        OmegaConf.register_new_resolver("infir_non_naming_keys", lambda: list(NON_NAMING_KEYS))
    if not OmegaConf.has_resolver("infir_cwd"):
        # The launch directory, also where ${hydra:runtime.cwd} is not available yet
        # (a multirun's sweep dir is resolved before any job's Hydra config exists).
        OmegaConf.register_new_resolver("infir_cwd", os.getcwd)
