"""Where a config key was set: the config file(s) of this composition that hold it, or the command line.

Inside a Hydra app (``HydraConfig`` initialized) the composition is exact: Hydra's own defaults list for
the job's config name and command-line overrides says which file is mounted at which package (asked only
when a quick scan of the conf dirs is ambiguous), and ``hydra.overrides.task`` holds the command line.
Outside one (configs composed with ``hydra.compose``, as the tests and the phase chain do) the conf dirs
of the search path (or the repository's ``conf/``) are searched for files that contain the key path.
Only error messages use this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

# conf/ beside the infir package (not the current directory: train.py runs from anywhere)
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
_REPO_ROOT = CONF_DIR.parent
_PACKAGE_HEADER = re.compile(r"^#\s*@package\s+(\S+)")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def split_path(path: str) -> list[str | int]:
    """``chain.phases[0].phase`` -> ``["chain", "phases", 0, "phase"]``."""
    return [int(index) if index else name for name, index in _PATH_PART.findall(path)]


def display(path: Path) -> str:
    """A file as a message shows it: relative to the repository when inside it (``conf/model/tiny.yaml``)."""
    try:
        return str(path.resolve().relative_to(_REPO_ROOT))
    except ValueError:
        return str(path)


@lru_cache(maxsize=256)
def _load(path: Path, mtime: float) -> tuple[str | None, Any]:
    """(``@package`` header or None, parsed content) of one YAML file."""
    text = path.read_text(encoding="utf-8")
    package = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        match = _PACKAGE_HEADER.match(line)
        if match:
            package = match.group(1)
    try:
        return package, yaml.load(text, Loader=_Loader)  # noqa: S506  (a safe loader)
    except yaml.YAMLError:
        return package, None


def _contains(content: Any, parts: list[str | int]) -> bool:
    node = content
    for part in parts:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return False
        elif not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _holds(file: Path, mount: str, parts: list[str | int]) -> bool:
    """Whether ``file``, mounted at package ``mount`` ("" = the root), sets the key path ``parts``."""
    mount_parts = split_path(mount)
    if parts[: len(mount_parts)] != mount_parts or len(parts) == len(mount_parts):
        return False
    relative = parts[len(mount_parts):]
    if relative[0] == "defaults" and not mount_parts:
        return False  # a defaults list, not a config key
    _, content = _load(file, file.stat().st_mtime)
    return _contains(content, relative)


def search_dirs() -> list[Path]:
    """The file conf dirs of the current Hydra search path (a test's copy of conf/, --config-dir), or conf/."""
    from hydra.core.global_hydra import GlobalHydra

    dirs: list[Path] = []
    if GlobalHydra.instance().is_initialized():
        for element in GlobalHydra.instance().config_loader().get_search_path().get_path():
            if element.path and element.path.startswith("file://"):
                dirs.append(Path(element.path[len("file://"):]))
            elif element.path and "://" not in element.path:
                dirs.append(Path(element.path))
    return [d for d in dirs if d.is_dir()] or [CONF_DIR]


def _composed_files(dirs: list[Path], config_name: str, overrides: list[str]) -> list[tuple[Path, str]] | None:
    """(file, package) of every config file of the running job's composition, from Hydra's defaults list."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    if not GlobalHydra.instance().is_initialized():
        return None
    try:
        defaults = GlobalHydra.instance().config_loader().compute_defaults_list(
            config_name, overrides, RunMode.RUN).defaults
    except Exception:  # noqa: BLE001  (only a message depends on it; the scan below still answers)
        return None
    files = []
    for default in defaults:
        if default.config_path is None:
            continue
        for directory in dirs:
            file = directory / f"{default.config_path}.yaml"
            if file.is_file():
                files.append((file, default.package or ""))
                break
    return files


def _all_files(dirs: list[Path]) -> Iterator[tuple[Path, str]]:
    """Every YAML file of the conf dirs with the packages it may be mounted at: its ``@package`` header,
    else its group (``model``), and for nested groups also group + name (``stages/heuristic@stages.heuristic``
    inside ``curation`` mounts at ``curation.stages.heuristic``)."""
    for directory in dirs:
        for file in sorted(directory.rglob("*.yaml")):
            relative = file.relative_to(directory).with_suffix("").parts
            header, _ = _load(file, file.stat().st_mtime)
            if header is not None:
                yield file, "" if header == "_global_" else header.removeprefix("_global_.")
                continue
            group = ".".join(relative[:-1])
            yield file, group
            if len(relative) > 2:
                yield file, f"{group}.{relative[-1]}"


def _override_key(override: str) -> str:
    return override.lstrip("~+").split("=", 1)[0]


def _matching_overrides(path: str, overrides: Iterable[str], groups: set[str]) -> list[str]:
    """Command-line overrides that set ``path`` (or a node above or below it); group choices excluded."""
    found = []
    for override in overrides:
        key = _override_key(override)
        if key in groups or "@" in key or "/" in key:
            continue
        if key == path or path.startswith((f"{key}.", f"{key}[")) or key.startswith(f"{path}."):
            found.append(override)
    return found


def render(value: Any) -> str:
    """A value in Hydra's override grammar (``3``, ``[a, b]``, ``{k: v}``)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def where_set(path: str, value: Any = None) -> str:
    """Where ``path`` was set, as a message fragment: ``in conf/model/wide.yaml``, ``from the command line
    override +model.hidden_sise=3``, both, or (outside a Hydra app, in no file) the override it must
    have come from.

    The conf dirs are scanned first (a few milliseconds); Hydra's defaults list, which loads the whole
    composition again, is computed only when the scan is ambiguous (several files, or a file and an
    override) or finds nothing.
    """
    from hydra.core.hydra_config import HydraConfig

    parts = split_path(path)
    dirs = search_dirs()
    files = list(dict.fromkeys(file for file, mount in _all_files(dirs) if _holds(file, mount, parts)))
    overrides: list[str] = []
    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        task = [str(o) for o in hydra.overrides.task]
        overrides = _matching_overrides(path, task, set(hydra.runtime.choices.keys()))
        if len(files) > 1 or (files and overrides) or not (files or overrides):
            composed = _composed_files(dirs, str(hydra.job.config_name), task)
            if composed is not None:  # only the files of this composition
                files = list(dict.fromkeys(file for file, mount in composed if _holds(file, mount, parts)))
    fragments = []
    if files:
        fragments.append("in " + ", ".join(display(f) for f in files))
    if overrides:
        label = "override" if len(overrides) == 1 else "overrides"
        fragments.append(f"the command line {label} " + ", ".join(overrides))
    if not fragments:
        where = ", ".join(display(d) for d in dirs)
        return f"from an override such as +{path}={render(value)} (no file in {where} sets it)"
    if not files:
        return f"from {fragments[0]}"
    return " and ".join(fragments)
