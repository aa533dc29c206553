"""Resource limits of one sandboxed program, validated once so a bad config names its key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

MiB = 1 << 20


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits. Defaults suit benchmark tests (HumanEval/MBPP run in well under a second).

    Whole program (every process it starts, waited for or not): ``cpu_time_s`` (summed by the sandbox's
    init), ``memory_bytes`` (anonymous memory, shared memory, memfd and tmpfs pages; a cgroup, where the
    host has one), ``max_processes`` (processes *and threads*: RLIMIT_NPROC in its own user namespace, and
    the cgroup's pids limit) and ``cpu_cores`` (the cgroup's CPU bandwidth). Per process:
    ``address_space_bytes``, ``max_file_bytes`` (also the size of one memfd), ``max_open_files``.
    ``tmpfs_bytes`` sizes ``/sandbox`` and ``/tmp`` and is the SysV shared-memory total of the program.
    """

    wall_time_s: float = 10.0
    cpu_time_s: float = 10
    address_space_bytes: int = 1024 * MiB
    memory_bytes: int = 1024 * MiB
    max_processes: int = 16
    cpu_cores: float = 1.0
    max_output_bytes: int = 1 * MiB
    max_file_bytes: int = 16 * MiB
    max_open_files: int = 256
    tmpfs_bytes: int = 64 * MiB

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"sandbox.{field.name} must be a positive number, got {value!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SandboxLimits:
        """Build from a config mapping; an unknown key is an error naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"sandbox: unknown limit(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(values))

    def as_launcher_spec(self) -> dict[str, float | int]:
        """What the launcher applies: rlimits, the init's CPU budget, the IPC namespace's shm limits.

        Wall time, output size and the cgroup are enforced by the host.
        """
        return {"cpu_time_s": float(self.cpu_time_s), "address_space_bytes": int(self.address_space_bytes),
                "max_processes": int(self.max_processes), "max_file_bytes": int(self.max_file_bytes),
                "max_open_files": int(self.max_open_files), "shm_bytes": int(self.tmpfs_bytes)}
