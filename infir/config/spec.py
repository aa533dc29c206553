"""The building blocks of the config schema and the walk that checks a composed config against it.

A spec says which keys a node may have: ``Keys`` (a fixed set, each with its own spec), ``MapOf`` (names
the config chooses, such as sources or callbacks), ``ListOf``, ``Target`` (a ``_target_`` node: the
target's constructor parameters), ``Switch`` (chosen from the config, e.g. by ``data_mix.kind``) and
``ANY`` (not looked into). Values are not type-checked here (``checks.py`` does that); an unknown key is
a ``ConfigError`` that names the full key, where it was set and the closest known key.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from infir.config import targets
from infir.config.errors import ConfigError
from infir.config.provenance import where_set


class Spec(Protocol):
    def check(self, walk: Walk, path: str, value: Any) -> None: ...


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


class Walk:
    """One check of a composed config (as plain containers, interpolations unresolved).

    ``import_heavy``: also import targets that need torch/Lightning/transformers (``validate_targets``);
    without it their keys are left for that later check. Nodes whose keys need an import (targets, key
    sets read from code) are checked after every node whose keys are written here, so a typo in our own
    groups fails before anything is imported.
    """

    def __init__(self, root: Mapping[str, Any], import_heavy: bool) -> None:
        self.root = root
        self.import_heavy = import_heavy
        self._later: list[tuple[Spec, str, Any]] = []
        self._importing = False

    def start(self, spec: Spec) -> Walk:
        """Check every node whose keys are written in the schema; queue those whose keys need an import."""
        spec.check(self, "", dict(self.root))
        return self

    def finish(self) -> None:
        """Check the queued nodes (targets, key sets read from code), importing what they need."""
        self._importing = True
        while self._later:
            later, path, value = self._later.pop(0)
            later.check(self, path, value)

    def defer(self, spec: Spec, path: str, value: Any) -> bool:
        """True (and queued) when ``spec`` needs an import and the written key sets are not all checked yet."""
        if self._importing:
            return False
        self._later.append((spec, path, value))
        return True

    def unknown(self, path: str, value: Any, allowed: Iterable[str], known_as: str, hint: str = "") -> None:
        """Raise the error for an unknown key ``path`` (its last component checked against ``allowed``)."""
        allowed = sorted(str(a) for a in allowed)
        parent, _, key = path.rpartition(".")
        message = f"unknown config key {path!r} {where_set(path, value)}"
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            message += f" (did you mean {join(parent, close[0])!r}?)"
        raise ConfigError(f"{message}; {known_as}: {', '.join(allowed) or '(none)'}{hint}")

    def target_parameters(self, path: str, target: Any) -> frozenset[str] | None:
        """Keys the target at ``path`` takes; None: any (``**kwargs``) or not checked yet (heavy target)."""
        key = f"{path}._target_"
        if not isinstance(target, str) or not target:
            raise ConfigError(f"{key} must be a dotted import path, got {target!r}")
        if target.startswith("${"):
            return None  # an interpolation: its keys are not known before it resolves
        try:
            if not self.import_heavy and not targets.is_light(target):
                targets.check_importable_root(target)
                return None
            return targets.parameters(targets.locate(target))
        except targets.TargetImportError as error:
            raise ConfigError(f"{key}: cannot import {target!r} ({error})") from None


@dataclass(frozen=True)
class Value:
    """Any value; nothing inside it is checked."""

    def check(self, walk: Walk, path: str, value: Any) -> None:
        return None


ANY = Value()


@dataclass(frozen=True)
class Keys:
    """A node with a fixed set of keys. ``fields`` may be a function (keys read from code when first needed);
    ``private``: keys starting with ``_`` are allowed (YAML anchor holders such as eval's ``_procedural``)."""

    known_as: str
    fields: Mapping[str, Spec] | Callable[[], Mapping[str, Spec]]
    private: bool = False

    def names(self) -> Mapping[str, Spec]:
        return self.fields() if callable(self.fields) else self.fields

    def check(self, walk: Walk, path: str, value: Any) -> None:
        if not isinstance(value, dict) or (callable(self.fields) and walk.defer(self, path, value)):
            return
        fields = self.names()
        keys = [key for key in value if not (self.private and str(key).startswith("_"))]
        for key in keys:  # this node's own keys before any node below it
            if key not in fields:
                walk.unknown(join(path, key), value[key], fields, self.known_as)
        for key in keys:
            if value[key] is not None:
                fields[key].check(walk, join(path, key), value[key])


@dataclass(frozen=True)
class MapOf:
    """A node whose keys the config names (sources, callbacks, loggers, domains); null entries are removed ones."""

    value: Spec
    known_as: str = ""

    def check(self, walk: Walk, path: str, value: Any) -> None:
        if not isinstance(value, dict):
            return
        for key, child in value.items():
            if isinstance(self.value, Target) and isinstance(child, dict) and "_target_" not in child:
                # `+data_mix.sources.stdlb.max_files=3`: a typo of a name makes a node without a target
                others = [k for k, v in value.items() if isinstance(v, dict) and "_target_" in v]
                walk.unknown(join(path, key), child, others, self.known_as, " (a new one needs a _target_)")
            if child is not None:
                self.value.check(walk, join(path, key), child)


@dataclass(frozen=True)
class ListOf:
    item: Spec

    def check(self, walk: Walk, path: str, value: Any) -> None:
        if isinstance(value, list):
            for index, child in enumerate(value):
                if child is not None:
                    self.item.check(walk, f"{path}[{index}]", child)


@dataclass(frozen=True)
class Nested:
    """Any value; the ``_target_`` nodes inside it, at any depth, are checked as targets."""

    def check(self, walk: Walk, path: str, value: Any) -> None:
        if isinstance(value, dict):
            if "_target_" in value:
                Target().check(walk, path, value)
                return
            for key, child in value.items():
                self.check(walk, join(path, key), child)
        elif isinstance(value, list):
            for index, child in enumerate(value):
                self.check(walk, f"{path}[{index}]", child)


NESTED = Nested()


@dataclass(frozen=True)
class Target:
    """A ``_target_`` node: its keys are the target's constructor parameters plus ``extra`` (our own keys
    that the code reads and removes before instantiating); ``fields`` gives specs for some of them. Keys
    starting with ``_`` are Hydra's. A mapping without ``_target_`` where a target is expected is an error;
    a plain value (``strategy: ddp``) is left alone."""

    extra: frozenset[str] = frozenset()
    fields: Mapping[str, Spec] = field(default_factory=dict)

    def check(self, walk: Walk, path: str, value: Any) -> None:
        if not isinstance(value, dict) or walk.defer(self, path, value):
            return
        if "_target_" not in value:
            raise ConfigError(f"{path} needs a _target_ (the class or function it builds); it was set "
                              f"{where_set(path, value)}")
        target = value["_target_"]
        accepted = walk.target_parameters(path, target)
        for key, child in value.items():
            if str(key).startswith("_"):
                continue
            if accepted is not None and key not in accepted and key not in self.extra:
                walk.unknown(join(path, key), child, accepted | self.extra, f"{target} takes")
            self.fields.get(key, NESTED).check(walk, join(path, key), child)


@dataclass(frozen=True)
class Switch:
    """The spec ``choose`` picks from the whole config (e.g. SFT or token sources by ``data_mix.kind``)."""

    choose: Callable[[Mapping[str, Any]], Spec]

    def check(self, walk: Walk, path: str, value: Any) -> None:
        self.choose(walk.root).check(walk, path, value)
