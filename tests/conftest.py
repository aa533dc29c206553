"""Shared test setup: offline everything, small shared caches, a runner for train.py.

``run_train`` starts ``python train.py`` in a fresh interpreter. ``run_train(..., fork=True)`` runs the
same command line in a fork of a helper interpreter that has already imported torch, Lightning,
transformers, Hydra and W&B (~10 s of start-up per run on 2 cores), so tests that launch train.py
many times (kill and resume, sweeps) pay that import once per session. The forked run is still its own
process and session: its own exit status (``-SIGKILL`` when killed), stdout/stderr, environment and
working directory, and it runs train.py as ``__main__`` with the given ``sys.argv``.
``start_train`` starts a run without waiting, so a test can run two independent runs at once: each
uses one thread (OMP_NUM_THREADS=1), and the machine has two cores.
"""

from __future__ import annotations

import csv
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")

import infir  # noqa: E402,F401  (torchvision op guard before anything imports torchvision)

REPO = Path(__file__).resolve().parents[1]
TRAIN_TIMEOUT_S = 600
# What train.py imports before its first step; read once by the fork server, shared by every forked run.
_PRELOAD = ("torch", "lightning.pytorch", "transformers", "hydra", "wandb", "tensorboard", "optuna",
            "infir.training.train", "infir.training.chain")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact cache for the session: tokenizers and token shards are built once."""
    return tmp_path_factory.mktemp("infir-cache")


class TrainRun:
    """A started ``train.py``; :meth:`wait` gives its exit status and output as a ``CompletedProcess``."""

    def __init__(self, cmd: list[str], train_args: list[str], env: dict[str, str], fork: bool) -> None:
        self.cmd = cmd
        self._logs = tempfile.TemporaryDirectory(prefix="infir-train-")
        # output to files, not pipes: two runs at once never block on a full pipe
        self._out, self._err = Path(self._logs.name) / "stdout", Path(self._logs.name) / "stderr"
        if fork:
            self._server: _ForkServer | None = _fork_server()
            self.pid = self._server.start(train_args, env, self._out, self._err)
        else:
            self._server = None
            with self._out.open("wb") as out, self._err.open("wb") as err:
                self._proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err)
            self.pid = self._proc.pid

    def wait(self, check: bool = True) -> subprocess.CompletedProcess:
        try:
            if self._server is not None:
                returncode = self._server.wait(self.pid, TRAIN_TIMEOUT_S)
            else:
                try:
                    returncode = self._proc.wait(TRAIN_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    returncode = None
            if returncode is None:
                self._kill()
                raise subprocess.TimeoutExpired(self.cmd, TRAIN_TIMEOUT_S, *self._output())
            proc = subprocess.CompletedProcess(self.cmd, returncode, *self._output())
        finally:
            self._logs.cleanup()
        if check and proc.returncode != 0:
            raise AssertionError(f"train.py failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def _output(self) -> tuple[str, str]:
        return self._out.read_text(errors="replace"), self._err.read_text(errors="replace")

    def _kill(self) -> None:
        if self._server is not None:
            os.killpg(self.pid, signal.SIGKILL)  # the forked run leads its own session
            self._server.wait(self.pid, None)
        else:
            self._proc.kill()
            self._proc.wait()


def start_train(args: list[str], out_dir: Path, cache: Path, env: dict[str, str] | None = None,
                fork: bool = False) -> TrainRun:
    """Start ``train.py`` with outputs and cache redirected: a fresh interpreter, or (``fork``) a forked one.

    ``env`` is added to this process's environment; with ``fork`` its ``PYTHONPATH`` goes onto ``sys.path``
    (variables read while torch and friends import, e.g. OMP_NUM_THREADS, are the fork server's: 1 thread).
    """
    train_args = [*args, f"paths.output_dir={out_dir}", f"paths.cache_dir={cache}"]
    cmd = [sys.executable, str(REPO / "train.py"), *train_args]
    return TrainRun(cmd, train_args, {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, fork)


def run_train(args: list[str], out_dir: Path, cache: Path, check: bool = True,
              env: dict[str, str] | None = None, fork: bool = False) -> subprocess.CompletedProcess:
    """Run ``train.py`` to the end (see :func:`start_train`); ``check``: fail on a non-zero exit status."""
    return start_train(args, out_dir, cache, env, fork).wait(check)


def read_metrics(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(newline="") as f:
        return list(csv.DictReader(f))


_TIMING = ("perf/", "_runtime", "_timestamp")  # wall-clock dependent: compared by presence, not value


def comparable_row(row: dict) -> dict:
    """A metrics row with its timing values replaced by whether they are present."""
    return {k: (v not in ("", None) if k.startswith(_TIMING) else v) for k, v in row.items()}


def last_value(rows: list[dict[str, str]], key: str) -> tuple[int, float]:
    """(step, value) of the last row that has ``key``."""
    for row in reversed(rows):
        if row.get(key):
            return int(row["step"]), float(row[key])
    raise KeyError(key)


# --- fork server --------------------------------------------------------------------------------
# Protocol, one JSON object per line: requests {"args", "env", "stdout", "stderr"} on the server's stdin;
# replies {"started": pid} at once and {"exited": pid, "returncode": n} when that run ends.


class _ForkServer:
    """A helper interpreter with train.py's heavy modules imported; each request runs train.py in a fork."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        boot = f"import sys; sys.path[:0] = {_SERVER_PATH!r}; import conftest; conftest._serve()"
        self.proc = subprocess.Popen([sys.executable, "-c", boot], cwd=REPO, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.exited: dict[int, int] = {}

    def _reply(self, timeout: float | None) -> dict[str, Any] | None:
        """The next reply (an exit is also recorded in ``exited``), or None after ``timeout`` seconds."""
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            return None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the train.py fork server died (exit status {self.proc.wait()})")
        reply = json.loads(line)
        if "exited" in reply:
            self.exited[reply["exited"]] = reply["returncode"]
        return reply

    def start(self, train_args: list[str], env: dict[str, str], stdout: Path, stderr: Path) -> int:
        request = {"args": train_args, "env": env, "stdout": str(stdout), "stderr": str(stderr)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        while True:
            reply = self._reply(None)
            if "started" in reply:
                return reply["started"]

    def wait(self, pid: int, timeout: float | None) -> int | None:
        """The run's exit status as ``subprocess`` reports it (-9: SIGKILL), or None after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid not in self.exited:
            left = None if deadline is None else deadline - time.monotonic()
            if (left is not None and left <= 0) or self._reply(left) is None:
                return None
        return self.exited.pop(pid)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_SERVER: _ForkServer | None = None
_SERVER_PATH = [str(REPO), str(REPO / "tests")]  # the fork server's own imports; not the forked run's


def _fork_server() -> _ForkServer:
    global _SERVER
    if _SERVER is None or _SERVER.proc.poll() is not None:
        _SERVER = _ForkServer()
    return _SERVER


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SERVER is not None:
        _SERVER.close()


def _serve() -> None:
    """The fork server's loop: fork a run per request, report each run's exit; ends when stdin closes."""
    import importlib

    for name in _PRELOAD:
        importlib.import_module(name)
    replies = os.fdopen(os.dup(1), "w")
    requests = os.dup(0)
    os.dup2(os.open(os.devnull, os.O_RDWR), 0)
    os.dup2(2, 1)  # nothing but replies may reach the reply pipe
    pending, running, open_ = b"", set(), True

    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    while open_ or running:
        if open_ and select.select([requests], [], [], 0.2 if running else None)[0]:
            chunk = os.read(requests, 1 << 16)
            open_ = bool(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    replies.close()
                    os.close(requests)
                    _run_forked_train(json.loads(line))  # raises SystemExit: exits as `python train.py` would
                running.add(pid)
                reply({"started": pid})
        elif not open_:
            time.sleep(0.2)
        for pid in list(running):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                running.discard(pid)
                reply({"exited": pid, "returncode": os.waitstatus_to_exitcode(status)})


def _run_forked_train(job: dict[str, Any]) -> None:
    """In the forked child: become train.py's own session with its own output files, env, cwd and argv."""
    import runpy

    os.setsid()  # its own process group: a kill -9 of the group (tests/kill_points.py) stops this run only
    for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    os.environ.clear()
    os.environ.update(job["env"])
    script = REPO / "train.py"
    extra = [p for p in job["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    while sys.path and sys.path[0] in (*_SERVER_PATH, ""):  # the server's entries and the '' of `python -c`
        del sys.path[0]
    sys.path[:0] = [str(script.parent), *extra]  # as the interpreter sets sys.path for `python train.py`
    os.chdir(REPO)
    sys.argv = [str(script), *job["args"]]
    runpy.run_path(str(script), run_name="__main__")
    raise SystemExit(0)
