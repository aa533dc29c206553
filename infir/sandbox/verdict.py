"""Turn how a sandboxed program ended into a verdict: pass / fail / timeout / error, with a reason.

``fail`` is the program's own failure (an assertion or any exception it raised, leaving before its
tests completed); ``timeout`` is the wall-clock or the whole program's CPU limit; ``error`` is a limit
of the machine or the interpreter (memory, processes, open files, file size, disk, recursion depth,
output) or a signal. ``RecursionError`` is an error, like ``MemoryError``: Python's recursion limit is
a resource bound, and deeper recursion ends as a SIGSEGV (also an error) once the C stack runs out.
Only ``pass`` counts towards pass@k, so the split between fail and error changes reasons, not scores.

A test run (``Sandbox.run_tests``) passes only on the harness's token, written after the tests
returned; exit status 0 without it is a failure. A plain program (``Sandbox.run_python``) passes on
exit status 0.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass

PASS, FAIL, TIMEOUT, ERROR = "pass", "fail", "timeout", "error"

_RESOURCE_EXCEPTIONS = {
    "MemoryError": "memory limit",
    "RecursionError": "recursion limit",
    "BlockingIOError: [Errno 11] Resource temporarily unavailable": "process limit",
    "OSError: [Errno 11] Resource temporarily unavailable": "process limit",
    "OSError: [Errno 12] Cannot allocate memory": "memory limit",  # fork() past the address-space limit
    "OSError: [Errno 24] Too many open files": "open-file limit",
    "OSError: [Errno 27] File too large": "file-size limit",
    "OSError: [Errno 28] No space left on device": "working-directory size limit",
}

_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b")


def _resource_reason(line: str) -> str | None:
    """The limit a resource exception line names (with the line), or None."""
    for prefix, reason in _RESOURCE_EXCEPTIONS.items():
        if line.startswith(prefix):
            return f"{reason} ({line})"
    return None


@dataclass(frozen=True)
class Ending:
    """Everything the host observed about a finished program.

    ``tests_completed`` is None for a plain program, else whether the harness's token came back.
    """

    wait_status: int | None
    wall_timed_out: bool
    output_exceeded: bool
    cpu_exceeded: bool
    oom_kills: int
    stderr: str
    tests_completed: bool | None = None


def last_exception_line(stderr: str) -> str:
    """The final line of a Python traceback (``ValueError: ...``), or the last non-empty line."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def classify(ending: Ending) -> tuple[str, str]:
    """(verdict, reason) for a finished program."""
    if ending.output_exceeded:
        return ERROR, "output limit exceeded"
    if ending.oom_kills:
        return ERROR, f"memory limit (whole program: {ending.oom_kills} process(es) killed by the cgroup)"
    if ending.tests_completed:
        return PASS, ""
    if ending.wall_timed_out:
        return TIMEOUT, "wall-time limit"
    if ending.cpu_exceeded:
        return TIMEOUT, "cpu-time limit (whole program)"
    status = ending.wait_status
    if status is None:
        return ERROR, "no exit status (sandbox killed)"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:  # one process past RLIMIT_CPU (the whole-program budget is cpu_exceeded)
            return TIMEOUT, "cpu-time limit"
        return ERROR, f"killed by signal {signal.Signals(sig).name}"
    code = os.WEXITSTATUS(status)
    last = last_exception_line(ending.stderr)
    if code == 0:
        if ending.tests_completed is None:
            return PASS, ""
        return FAIL, "ended with status 0 before its tests completed"
    resource = _resource_reason(last)
    if resource is None and not _EXCEPTION_LINE.match(last):
        # many processes writing tracebacks at once (a fork bomb's children) interleave them, so the last
        # line may be a fragment: the latest complete resource exception line names the limit instead
        resource = next((r for line in reversed(ending.stderr.splitlines())
                         if (r := _resource_reason(line.strip())) is not None), None)
    if resource is not None:
        return ERROR, resource
    return FAIL, last or f"exit code {code}"
