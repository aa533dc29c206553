"""Executors: where the data pipeline's shard tasks run (``local`` process pool or a ``ray`` cluster).

Curation passes and the token-shard builder hand an executor a module-level function and a list of
picklable tasks; the executor returns the results in task order. Tasks write their outputs themselves
(atomically, with completion markers), so a task that is retried after its worker died redoes only
unfinished shards and the result does not depend on where, or on how many workers, it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    """Runs ``fn`` over ``tasks`` on ``workers`` parallel slots; results come back in task order."""

    workers: int

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], desc: str) -> list[Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ExecutorSpec:
    """What config says about execution (``curation.executor``, ``curation.workers``, ``curation.ray``).

    Not part of any cache key: every executor and worker count gives byte-identical outputs.
    """

    kind: str = "local"
    workers: int = 1
    ray_address: str | None = None  # unset: start a local Ray instance; set (host:port or "auto"): join it

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"curation.executor must be one of {list(EXECUTORS)}, got {self.kind!r}")
        if int(self.workers) < 1:
            raise ValueError(f"curation.workers must be >= 1, got {self.workers}")

    @classmethod
    def from_config(cls, node: Any) -> ExecutorSpec:
        """From a curation config node (``executor``, ``workers``, ``ray.address``; all optional)."""
        ray_node = node.get("ray") or {}
        return cls(str(node.get("executor") or "local"), int(node.get("workers") or 1), ray_node.get("address"))

    def create(self) -> Executor:
        if self.kind == "ray":
            from infir.data.execution.ray_cluster import RayExecutor

            return RayExecutor(self.workers, self.ray_address)
        from infir.data.execution.local import LocalExecutor

        return LocalExecutor(self.workers)


class LazyExecutor:
    """An executor started only when a call has more than one task (a single task runs in this process):
    small jobs, and runs whose every shard is already done, start no pool and no Ray."""

    def __init__(self, spec: ExecutorSpec) -> None:
        self.spec = spec
        self.workers = spec.workers
        self._executor: Executor | None = None

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], desc: str) -> list[Any]:
        if len(tasks) <= 1 or self.workers == 1:
            return [fn(t) for t in tasks]
        if self._executor is None:
            self._executor = self.spec.create()
        return self._executor.map(fn, tasks, desc)

    def prestart(self) -> None:
        """Start local workers ahead of the first ``map`` (Ray starts on first use: its init blocks)."""
        if self.workers > 1 and self.spec.kind == "local":
            if self._executor is None:
                self._executor = self.spec.create()
            self._executor.prestart()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None

    def __enter__(self) -> LazyExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
