"""Turn how a sandboxed program ended into a verdict: pass / fail / timeout / error, with a reason.

``fail`` is the program's own failure (an assertion or any exception it raised); ``timeout`` is the
wall-clock or CPU limit; ``error`` is a resource limit (memory, processes, output) or a signal.
Only ``pass`` counts towards pass@k.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

PASS, FAIL, TIMEOUT, ERROR = "pass", "fail", "timeout", "error"

_RESOURCE_EXCEPTIONS = {
    "MemoryError": "memory limit",
    "BlockingIOError: [Errno 11] Resource temporarily unavailable": "process limit",
    "OSError: [Errno 11] Resource temporarily unavailable": "process limit",
    "OSError: [Errno 24] Too many open files": "open-file limit",
    "OSError: [Errno 27] File too large": "file-size limit",
    "OSError: [Errno 28] No space left on device": "working-directory size limit",
}


@dataclass(frozen=True)
class Ending:
    """Everything the host observed about a finished program."""

    wait_status: int | None
    wall_timed_out: bool
    output_exceeded: bool
    cpu_s: float
    cpu_limit_s: float
    stderr: str


def last_exception_line(stderr: str) -> str:
    """The final line of a Python traceback (``ValueError: ...``), or the last non-empty line."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def classify(ending: Ending) -> tuple[str, str]:
    """(verdict, reason) for a finished program."""
    if ending.output_exceeded:
        return ERROR, "output limit exceeded"
    if ending.wall_timed_out:
        return TIMEOUT, "wall-time limit"
    status = ending.wait_status
    if status is None:
        return ERROR, "no exit status (sandbox killed)"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and ending.cpu_s >= ending.cpu_limit_s):
            return TIMEOUT, "cpu-time limit"
        return ERROR, f"killed by signal {signal.Signals(sig).name}"
    code = os.WEXITSTATUS(status)
    if code == 0:
        return PASS, ""
    last = last_exception_line(ending.stderr)
    for prefix, reason in _RESOURCE_EXCEPTIONS.items():
        if last.startswith(prefix):
            return ERROR, f"{reason} ({last})"
    return FAIL, last or f"exit code {code}"
