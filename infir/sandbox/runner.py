"""Host side of the sandbox: stage files, start the launcher, enforce wall time and output size.

The isolation itself lives in ``launcher.py`` (namespaces, read-only allow-listed root, rlimits,
PID-1 reaping). This module adds what only the host can enforce: a wall-clock deadline that kills
the launcher's process group (and with it the whole PID namespace), a cap on captured output, a
clean environment (nothing of the parent's, so no secrets), and parallel workers.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from infir.sandbox.limits import SandboxLimits
from infir.sandbox.verdict import PASS, Ending, classify

log = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("launcher.py")
WORKDIR = "/sandbox"
PROGRAM_FILE = "main.py"
# The only environment a program sees: no variable of the parent's is inherited.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORKDIR, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_SYSTEM_RO_PATHS = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache", "/etc/localtime",
                    "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


class SandboxUnavailable(RuntimeError):
    """The host cannot build the sandbox (e.g. user namespaces disabled); nothing untrusted was run."""


@dataclass(frozen=True)
class SandboxResult:
    """How one program ended. ``verdict`` is pass / fail / timeout / error; ``reason`` says why."""

    verdict: str
    reason: str
    exit_code: int | None
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    max_rss_kb: int

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
    """

    def __init__(self, limits: SandboxLimits | None = None, *, allow_code_execution: bool = False,
                 workers: int = 2, extra_ro_paths: Sequence[str] = (), env: Mapping[str, str] | None = None) -> None:
        if not allow_code_execution:
            raise PermissionError("executing model-generated code is disabled; set sandbox.allow_code_execution=true "
                                  "to run it inside the sandbox")
        if sys.platform != "linux":
            raise SandboxUnavailable(f"the sandbox needs Linux namespaces; this is {sys.platform}")
        self.limits = limits or SandboxLimits()
        self.workers = max(1, int(workers))
        self.ro_paths = sorted({*_SYSTEM_RO_PATHS, *interpreter_paths(), *extra_ro_paths})
        self.env = {**BASE_ENV, **(env or {})}
        self._checked = False

    def check(self) -> None:
        """Run a trivial program once; raises SandboxUnavailable with the launcher's reason."""
        if self._checked:
            return
        result = self._run_python("print('ok')")
        if not (result.passed and result.stdout.strip() == "ok"):
            raise SandboxUnavailable(f"sandbox self-test failed: {result.verdict}: {result.reason or result.stderr}")
        self._checked = True

    def run_python(self, source: str, files: Mapping[str, str] | None = None, stdin: str | None = None,
                   limits: SandboxLimits | None = None) -> SandboxResult:
        """Run ``source`` as ``/sandbox/main.py`` with the interpreter running this process."""
        self.check()
        return self._run_python(source, files, stdin, limits)

    def run_python_many(self, sources: Sequence[str], limits: SandboxLimits | None = None) -> list[SandboxResult]:
        """Run many programs on ``workers`` parallel sandboxes; results in input order."""
        self.check()
        if self.workers == 1 or len(sources) <= 1:
            return [self._run_python(s, limits=limits) for s in sources]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(lambda s: self._run_python(s, limits=limits), sources))

    def _run_python(self, source: str, files: Mapping[str, str] | None = None, stdin: str | None = None,
                    limits: SandboxLimits | None = None) -> SandboxResult:
        argv = [sys.executable, "-I", "-B", f"{WORKDIR}/{PROGRAM_FILE}"]
        return self.run(argv, {PROGRAM_FILE: source, **(files or {})}, stdin, limits)

    def run(self, argv: Sequence[str], files: Mapping[str, str], stdin: str | None = None,
            limits: SandboxLimits | None = None) -> SandboxResult:
        """Run ``argv`` (absolute executable path, visible read-only in the sandbox) in ``/sandbox``."""
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
            if stdin is not None:
                (files_dir / ".stdin").write_text(stdin, encoding="utf-8")
            spec = {"root": str(staging / "root"), "files": str(files_dir), "ro_paths": self.ro_paths,
                    "argv": list(argv), "env": self.env, "has_stdin": stdin is not None,
                    "limits": limits.as_launcher_spec(), "tmpfs_bytes": int(limits.tmpfs_bytes)}
            return self._execute(spec, limits)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _execute(self, spec: dict, limits: SandboxLimits) -> SandboxResult:
        status_r, status_w = os.pipe()
        spec = {**spec, "status_fd": status_w}
        start = time.monotonic()
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(spec)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    pass_fds=(status_w,), start_new_session=True, env={"PATH": BASE_ENV["PATH"]},
                                    cwd="/")
        finally:
            os.close(status_w)
        streams, timed_out, exceeded = _collect(proc, status_r, start + limits.wall_time_s, limits.max_output_bytes)
        _kill_group(proc.pid)
        proc.wait()
        wall = time.monotonic() - start
        report = _parse_status(streams["status"])
        stdout = streams["stdout"].decode("utf-8", "replace")
        stderr = streams["stderr"].decode("utf-8", "replace")
        if "setup_error" in report:
            raise SandboxUnavailable(f"sandbox setup failed: {report['setup_error']}")
        ending = Ending(wait_status=report.get("status"), wall_timed_out=timed_out, output_exceeded=exceeded,
                        cpu_s=float(report.get("cpu_s", 0.0)), cpu_limit_s=float(limits.cpu_time_s), stderr=stderr)
        verdict, reason = classify(ending)
        status = report.get("status")
        exit_code = os.waitstatus_to_exitcode(status) if status is not None else None
        return SandboxResult(verdict, reason, exit_code, stdout, stderr, wall, ending.cpu_s,
                             int(report.get("max_rss_kb", 0)))


def _collect(proc: subprocess.Popen, status_fd: int, deadline: float,
             max_output: int) -> tuple[dict[str, bytes], bool, bool]:
    """Read stdout, stderr and the status pipe until all close, the deadline passes or output overflows."""
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": [], "status": []}
    sizes = {"stdout": 0, "stderr": 0, "status": 0}
    timed_out = exceeded = False
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout.fileno(), selectors.EVENT_READ, "stdout")
        selector.register(proc.stderr.fileno(), selectors.EVENT_READ, "stderr")
        selector.register(status_fd, selectors.EVENT_READ, "status")
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
                chunks[key.data].append(data)
                sizes[key.data] += len(data)
            if sizes["stdout"] + sizes["stderr"] > max_output:
                exceeded = True
                break
    os.close(status_fd)
    proc.stdout.close()
    proc.stderr.close()
    return {k: b"".join(v)[: max_output] for k, v in chunks.items()}, timed_out, exceeded


def _kill_group(pgid: int) -> None:
    """SIGKILL the launcher's group; PID 1 of the sandbox is in it, so its namespace dies too."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _parse_status(raw: bytes) -> dict:
    """The launcher's last JSON status line (empty when it was killed before reporting)."""
    lines = [line for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
    for line in reversed(lines):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            log.warning("sandbox: unreadable status line %r", line[:200])
    return {}
