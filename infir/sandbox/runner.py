"""Host side of the sandbox: stage files, start the launcher, enforce wall time and output size.

The isolation itself lives in ``launcher.py`` (namespaces, read-only allow-listed root, rlimits,
PID-1 supervision and reaping). This module adds what only the host can enforce: the run's cgroup
(``cgroups.py``: whole-program memory, pids, CPU rate), a wall-clock deadline after which the
launcher kills and reaps the whole PID namespace, a cap on captured output, a clean environment
(nothing of the parent's, so no secrets), the token that only the test harness can return after the
tests ran (``harness.py``), and parallel workers.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

from infir.sandbox.cgroups import CgroupManager, RunGroup
from infir.sandbox.limits import SandboxLimits
from infir.sandbox.verdict import PASS, Ending, classify

log = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("launcher.py")
HARNESS = Path(__file__).with_name("harness.py")
WORKDIR = "/sandbox"
PROGRAM_FILE = "main.py"
HARNESS_FILE, SOLUTION_FILE, TESTS_FILE = ".harness.py", "solution.py", "tests.py"
RESULT_CAP = 4096  # bytes read from the harness's result pipe
STOP_GRACE_S = 5.0  # how long the launcher gets to kill and reap the namespace before the group is killed
_T = TypeVar("_T")
# The only environment a program sees: no variable of the parent's is inherited.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORKDIR, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_SYSTEM_RO_PATHS = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache", "/etc/localtime",
                    "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


class SandboxUnavailable(RuntimeError):
    """The host cannot build the sandbox (e.g. user namespaces disabled); nothing untrusted was run."""


@functools.cache
def _harness_source() -> str:
    """The harness staged into every test run (read once per process, not once per program)."""
    return HARNESS.read_text(encoding="utf-8")


class SolutionAndTests(NamedTuple):
    """A solution and the tests that judge it; they share one namespace, tests run second."""

    solution: str
    tests: str


@dataclass(frozen=True)
class SandboxResult:
    """How one program ended. ``verdict`` is pass / fail / timeout / error; ``reason`` says why.

    ``cpu_s`` is the whole program's CPU time (every process, waited for or not); ``memory_peak_bytes``
    the cgroup's peak (None on the rlimits route); ``limits_route`` how the whole program was bounded:
    ``cgroup-v2``, ``cgroup-v1`` or ``rlimits`` (see ``cgroups.py``).
    """

    verdict: str
    reason: str
    exit_code: int | None
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    max_rss_kb: int
    limits_route: str = "rlimits"
    memory_peak_bytes: int | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == PASS


def interpreter_paths() -> list[str]:
    """Directories the Python interpreter (and its venv) needs, exposed read-only in the sandbox."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(p for p in paths if p)


class Sandbox:
    """Runs untrusted programs, one fresh sandbox each; safe to call from several threads.

    ``allow_code_execution`` must be set explicitly, as in the standard harnesses: the caller
    acknowledges that model-written code will run on this machine (inside the sandbox).
    ``cgroups``: ``auto`` (a cgroup where the host allows one, else rlimits only), ``required``
    (refuse to run without one) or ``off``.
    """

    def __init__(self, limits: SandboxLimits | None = None, *, allow_code_execution: bool = False,
                 workers: int = 2, extra_ro_paths: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 cgroups: str = "auto") -> None:
        if not allow_code_execution:
            raise PermissionError("executing model-generated code is disabled; set sandbox.allow_code_execution=true "
                                  "to run it inside the sandbox")
        if sys.platform != "linux":
            raise SandboxUnavailable(f"the sandbox needs Linux namespaces; this is {sys.platform}")
        self.limits = limits or SandboxLimits()
        self.workers = max(1, int(workers))
        self.ro_paths = sorted({*_SYSTEM_RO_PATHS, *interpreter_paths(), *extra_ro_paths})
        self.env = {**BASE_ENV, **(env or {})}
        self.cgroups = CgroupManager(cgroups)
        self._checked = False
        self._warned_ipc = False

    @property
    def limits_route(self) -> str:
        """How whole-program limits are enforced on this host: cgroup-v2, cgroup-v1 or rlimits."""
        return self.cgroups.route

    def check(self) -> None:
        """Run a trivial program and a trivial test once; raises SandboxUnavailable with the reason."""
        if self._checked:
            return
        result = self._run_python("print('ok')")
        tested = self._run_tests(SolutionAndTests("x = 1", "assert x == 1"))
        for name, res in (("program", result), ("test harness", tested)):
            if not res.passed or (res is result and res.stdout.strip() != "ok"):
                raise SandboxUnavailable(f"sandbox self-test ({name}) failed: {res.verdict}: "
                                         f"{res.reason or res.stderr}")
        self._checked = True

    def run_python(self, source: str, files: Mapping[str, str] | None = None, stdin: str | None = None,
                   limits: SandboxLimits | None = None) -> SandboxResult:
        """Run ``source`` as ``/sandbox/main.py`` with the interpreter running this process."""
        self.check()
        return self._run_python(source, files, stdin, limits)

    def run_python_many(self, sources: Sequence[str], limits: SandboxLimits | None = None) -> list[SandboxResult]:
        """Run many programs on ``workers`` parallel sandboxes; results in input order."""
        self.check()
        return self._map(lambda s: self._run_python(s, limits=limits), sources)

    def run_tests(self, program: SolutionAndTests, files: Mapping[str, str] | None = None, stdin: str | None = None,
                  limits: SandboxLimits | None = None) -> SandboxResult:
        """Run a solution, then its tests (``harness.py``); passes only when the tests ran to their end."""
        self.check()
        return self._run_tests(program, files, stdin, limits)

    def run_tests_many(self, programs: Sequence[SolutionAndTests],
                       limits: SandboxLimits | None = None) -> list[SandboxResult]:
        """``run_tests`` on ``workers`` parallel sandboxes; results in input order."""
        self.check()
        return self._map(lambda p: self._run_tests(p, limits=limits), programs)

    def _map(self, fn: Callable[[_T], SandboxResult], items: Sequence[_T]) -> list[SandboxResult]:
        if self.workers == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(fn, items))

    def _run_python(self, source: str, files: Mapping[str, str] | None = None, stdin: str | None = None,
                    limits: SandboxLimits | None = None) -> SandboxResult:
        argv = [sys.executable, "-I", "-B", f"{WORKDIR}/{PROGRAM_FILE}"]
        return self.run(argv, {PROGRAM_FILE: source, **(files or {})}, stdin, limits)

    def _run_tests(self, program: SolutionAndTests, files: Mapping[str, str] | None = None, stdin: str | None = None,
                   limits: SandboxLimits | None = None) -> SandboxResult:
        argv = [sys.executable, "-I", "-B", f"{WORKDIR}/{HARNESS_FILE}"]
        staged = {**(files or {}), SOLUTION_FILE: program.solution, TESTS_FILE: program.tests}
        return self._run(argv, staged, stdin, limits, {HARNESS_FILE: _harness_source()})

    def run(self, argv: Sequence[str], files: Mapping[str, str], stdin: str | None = None,
            limits: SandboxLimits | None = None) -> SandboxResult:
        """Run ``argv`` (absolute executable path, visible read-only in the sandbox) in ``/sandbox``."""
        return self._run(argv, files, stdin, limits, None)

    def _run(self, argv: Sequence[str], files: Mapping[str, str], stdin: str | None,
             limits: SandboxLimits | None, harness: Mapping[str, str] | None) -> SandboxResult:
        limits = limits or self.limits
        staging = Path(tempfile.mkdtemp(prefix="infir-sandbox-"))
        try:
            files_dir = staging / "files"
            files_dir.mkdir()
            (staging / "root").mkdir()
            for name, text in files.items():
                if "/" in name or name.startswith("."):
                    raise ValueError(f"sandbox file name {name!r} must be a plain name (no '/', no leading '.')")
                (files_dir / name).write_text(text, encoding="utf-8")
            for name, text in (harness or {}).items():
                (files_dir / name).write_text(text, encoding="utf-8")
            if stdin is not None:
                (files_dir / ".stdin").write_text(stdin, encoding="utf-8")
            spec = {"root": str(staging / "root"), "files": str(files_dir), "ro_paths": self.ro_paths,
                    "argv": list(argv), "env": self.env, "has_stdin": stdin is not None,
                    "limits": limits.as_launcher_spec(), "tmpfs_bytes": int(limits.tmpfs_bytes)}
            return self._execute(spec, limits, with_token=harness is not None)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _execute(self, spec: dict, limits: SandboxLimits, with_token: bool) -> SandboxResult:
        try:  # +2: the launcher and PID 1 live in the run's cgroup too
            group = self.cgroups.create(int(limits.memory_bytes), int(limits.max_processes) + 2,
                                        float(limits.cpu_cores))
        except OSError as exc:
            raise SandboxUnavailable(f"sandbox cgroup ({self.cgroups.route}): {exc}") from exc
        try:
            return self._launch(spec, limits, with_token, group)
        finally:
            if group is not None:
                group.remove()

    def _launch(self, spec: dict, limits: SandboxLimits, with_token: bool, group: RunGroup | None) -> SandboxResult:
        status_r, status_w = os.pipe()
        token = secrets.token_hex(16).encode() if with_token else b""
        host_fds = [status_w]
        result_r = -1
        spec = {**spec, "status_fd": status_w, "host_pid": os.getpid(),
                "cgroup_procs": group.procs_files if group else [], "token_fd": None, "result_fd": None}
        if with_token:
            token_r, token_w = os.pipe()
            os.write(token_w, token)  # 32 bytes: fits the pipe buffer, then EOF for the harness
            os.close(token_w)
            result_r, result_w = os.pipe()
            host_fds += [token_r, result_w]
            spec.update(token_fd=token_r, result_fd=result_w)
        # the launcher's source comes as /dev/fd/N as well, so not even the repository's path shows
        script = os.open(LAUNCHER, os.O_RDONLY)
        host_fds.append(script)
        start = time.monotonic()
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", f"/dev/fd/{script}"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=tuple(host_fds),
                                    start_new_session=True, env={"PATH": BASE_ENV["PATH"]}, cwd="/")
        finally:
            for fd in host_fds:
                os.close(fd)
        try:  # the spec travels on stdin: nothing of it shows in /proc/1/cmdline inside the sandbox
            proc.stdin.write(json.dumps(spec).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        extra = {"result": result_r} if with_token else {}
        streams, timed_out, exceeded = _collect(proc, {"status": status_r, **extra}, start + limits.wall_time_s,
                                                limits.max_output_bytes)
        _stop(proc, still_running=timed_out or exceeded)
        wall = time.monotonic() - start
        report = _parse_status(streams["status"])
        stdout = streams["stdout"].decode("utf-8", "replace")
        stderr = streams["stderr"].decode("utf-8", "replace")
        if "setup_error" in report:
            raise SandboxUnavailable(f"sandbox setup failed: {report['setup_error']}")
        if report.get("ipc_limited") is False and not self._warned_ipc:
            self._warned_ipc = True
            log.warning("sandbox: this kernel does not let the sandbox lower its SysV shm limits")
        usage = group.usage() if group is not None else None
        completed = hmac.compare_digest(streams["result"], token) if with_token else None
        ending = Ending(wait_status=report.get("status"), wall_timed_out=timed_out, output_exceeded=exceeded,
                        cpu_exceeded=bool(report.get("cpu_exceeded")), oom_kills=usage.oom_kills if usage else 0,
                        stderr=stderr, tests_completed=completed)
        verdict, reason = classify(ending)
        status = report.get("status")
        exit_code = os.waitstatus_to_exitcode(status) if status is not None else None
        return SandboxResult(verdict, reason, exit_code, stdout, stderr, wall, float(report.get("cpu_s", 0.0)),
                             int(report.get("max_rss_kb", 0)), group.route if group else "rlimits",
                             usage.memory_peak_bytes if usage else None)


def _collect(proc: subprocess.Popen, pipes: Mapping[str, int], deadline: float,
             max_output: int) -> tuple[dict[str, bytes], bool, bool]:
    """Read stdout, stderr and ``pipes`` until all close, the deadline passes or output overflows."""
    names = ("stdout", "stderr", *pipes)
    chunks: dict[str, list[bytes]] = {name: [] for name in names}
    sizes = dict.fromkeys(names, 0)
    timed_out = exceeded = False
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout.fileno(), selectors.EVENT_READ, "stdout")
        selector.register(proc.stderr.fileno(), selectors.EVENT_READ, "stderr")
        for name, fd in pipes.items():
            selector.register(fd, selectors.EVENT_READ, name)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in selector.select(remaining):
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fd)
                    continue
                if sizes[key.data] < (RESULT_CAP if key.data == "result" else max_output + 1):
                    chunks[key.data].append(data)
                    sizes[key.data] += len(data)
            if sizes["stdout"] + sizes["stderr"] > max_output:
                exceeded = True
                break
    for fd in pipes.values():
        os.close(fd)
    proc.stdout.close()
    proc.stderr.close()
    return {k: b"".join(v)[: max_output] for k, v in chunks.items()}, timed_out, exceeded


def _stop(proc: subprocess.Popen, still_running: bool) -> None:
    """Reap the launcher. One still running (deadline, output cap) gets SIGTERM first: it kills PID 1 (and
    with it the whole namespace) and reaps it, so no sandbox process is left for the host's init to reap.

    When every pipe closed, the launcher has exited (it holds them to its end): just wait.
    """
    if still_running and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
    proc.wait()


def _kill_group(pgid: int) -> None:
    """SIGKILL the launcher's group; PID 1 of the sandbox is in it, so its namespace dies too."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _parse_status(raw: bytes) -> dict:
    """The launcher's status lines merged (empty when it was killed before reporting)."""
    report: dict = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            report.update(json.loads(line))
        except json.JSONDecodeError:
            log.warning("sandbox: unreadable status line %r", line[:200])
    return report
