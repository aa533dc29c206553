"""``_target_`` nodes: which targets are light enough to import during the config check, and which keys
each target's constructor takes.

``validate_config`` runs before torch, Lightning or transformers are imported, so it imports only targets
whose modules do not import them (``infir.*`` modules are read, not imported, to find out; ``hydra.*``
is already loaded); the others are checked by ``validate_targets`` once training has imported them.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from functools import lru_cache
from pathlib import Path
from typing import Any

import infir

# Packages that take seconds to import (or pull one of those in): never imported by validate_config.
HEAVY_PACKAGES = frozenset({"torch", "lightning", "pytorch_lightning", "transformers", "datasets", "wandb",
                            "tensorboard", "torchvision", "accelerate", "deepspeed", "flash_attn"})
_LIGHT_ROOTS = ("infir", "hydra", "omegaconf")
_SOURCE_ROOT = Path(infir.__file__).resolve().parent.parent  # the directory holding the infir package


class TargetImportError(ImportError):
    """A ``_target_`` that cannot be imported; the message says why."""


def _module_file(module: str) -> Path | None:
    """Source file of an ``infir`` module or package, found without importing it."""
    base = _SOURCE_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_level_imports(tree: ast.Module, package: str) -> list[str]:
    """Modules a module imports when it is imported: top-level statements, also inside top-level
    ``if``/``try``/``with`` blocks, but not inside functions or classes nor under ``if TYPE_CHECKING``."""
    names: list[str] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against this module's package
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                names.append(base)
                names.extend(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    return names


@lru_cache(maxsize=None)
def heavy_import(module: str) -> str | None:
    """The heavy package importing ``module`` would load (directly or through other ``infir`` modules,
    parent packages included), or None. Reads source files; imports nothing."""
    return _heavy_import(module, set())


def _heavy_import(module: str, seen: set[str]) -> str | None:
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__, then a/b/c
        name = ".".join(parts[:depth])
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None:
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in _module_level_imports(ast.parse(path.read_text(encoding="utf-8")), package):
            root = imported.split(".")[0]
            if root in HEAVY_PACKAGES:
                return root
            if root == "infir":
                found = _heavy_import(imported, seen)
                if found:
                    return found
    return None


def _module_of(target: str) -> str:
    """The module part of a dotted ``infir`` target path (the longest prefix that is a module file)."""
    parts = target.split(".")
    for depth in range(len(parts), 0, -1):
        name = ".".join(parts[:depth])
        if _module_file(name) is not None:
            return name
    return parts[0]


def is_light(target: str) -> bool:
    """Whether the config check may import ``target`` now (it pulls in no heavy package)."""
    root = target.split(".")[0]
    if root not in _LIGHT_ROOTS:
        return False
    return root != "infir" or heavy_import(_module_of(target)) is None


def check_importable_root(target: str) -> None:
    """Fail now when not even the target's top-level package is installed (finding it imports nothing)."""
    root = target.split(".")[0]
    try:
        found = importlib.util.find_spec(root) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise TargetImportError(f"no module named {root!r}")


def locate(target: str) -> Any:
    """Import the object a ``_target_`` names (``module.Class``, ``module.function``, ``module.Class.method``),
    as Hydra's instantiate finds it; ``TargetImportError`` says why not."""
    parts = target.split(".")
    if not all(parts):
        raise TargetImportError(f"not a dotted path: {target!r}")
    for depth in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:depth])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and (module_name == error.name or module_name.startswith(f"{error.name}.")):
                continue  # no such module: the path's module part is shorter
            raise TargetImportError(str(error)) from None
        except Exception as error:  # noqa: BLE001  (the module itself fails to import: say how)
            raise TargetImportError(f"importing {module_name} failed: {type(error).__name__}: {error}") from None
        for attribute in parts[depth:]:
            if not hasattr(obj, attribute):
                raise TargetImportError(f"{getattr(obj, '__name__', obj)!s} has no attribute {attribute!r}")
            obj = getattr(obj, attribute)
        return obj
    raise TargetImportError(f"no module named {parts[0]!r}")


def parameters(obj: Any) -> frozenset[str] | None:
    """Keyword parameters a config node may give ``obj``; None when it takes any (``**kwargs``) or has no
    readable signature."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    names = set()
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.add(parameter.name)
    return frozenset(names)
