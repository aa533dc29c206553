"""Resource limits of one sandboxed program, validated once so a bad config names its key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

MiB = 1 << 20


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits. Defaults suit benchmark tests (HumanEval/MBPP run in well under a second).

    ``max_processes`` counts processes *and threads* of the program (RLIMIT_NPROC inside its own user
    namespace), so it also bounds a fork bomb; ``address_space_bytes`` is per process.
    """

    wall_time_s: float = 10.0
    cpu_time_s: int = 10
    address_space_bytes: int = 1024 * MiB
    max_processes: int = 16
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

    def as_launcher_spec(self) -> dict[str, int]:
        """The limits the launcher applies as rlimits (wall time and output are enforced by the host)."""
        return {"cpu_time_s": int(self.cpu_time_s), "address_space_bytes": int(self.address_space_bytes),
                "max_processes": int(self.max_processes), "max_file_bytes": int(self.max_file_bytes),
                "max_open_files": int(self.max_open_files)}
