"""OmegaConf resolvers used by conf/ (registered before Hydra composes)."""

from __future__ import annotations

import hashlib
import os
import string

from omegaconf import OmegaConf

_MAX_NAME = 96
# Characters a run dir name keeps: those both Hydra's override grammar (unquoted values) and a POSIX
# shell accept as plain text, so a printed path passes back as `model=<path>` without quotes.
# `-` and `+` are the key/value and item separators set in conf/hydra/default.yaml.
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_.:+-")


def run_name(override_dirname: str) -> str:
    """Folder/W&B name of a run from its overrides; ``default`` without any.

    ``/`` becomes ``_``; any other character Hydra or the shell would read specially becomes ``_`` too,
    and then (or when the name is too long) a hash of the overrides keeps different runs apart.
    """
    if not override_dirname:
        return "default"
    safe = override_dirname.replace("/", "_")
    cleaned = "".join(char if char in _NAME_CHARS else "_" for char in safe)
    if cleaned == safe and len(cleaned) <= _MAX_NAME:
        return cleaned
    return cleaned[: _MAX_NAME - 13] + "-" + hashlib.sha1(override_dirname.encode()).hexdigest()[:12]


def path_name(path: str) -> str:
    """Folder name for results about a model path: its last four components, e.g. ``runs_default_hf_export``."""
    parts = [part for part in str(path).rstrip("/").split("/") if part not in ("", ".", "..")]
    return run_name("_".join(parts[-4:]))


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("infir_path_name"):
        OmegaConf.register_new_resolver("infir_path_name", path_name)
    if not OmegaConf.has_resolver("infir_run_name"):
        OmegaConf.register_new_resolver("infir_run_name", run_name)
    if not OmegaConf.has_resolver("infir_cwd"):
        # The launch directory, also where ${hydra:runtime.cwd} is not available yet
        # (a multirun's sweep dir is resolved before any job's Hydra config exists).
        OmegaConf.register_new_resolver("infir_cwd", os.getcwd)
