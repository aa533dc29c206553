"""The code sandbox: verdicts, and adversarial programs that must be contained without harming the host."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from infir.sandbox import ERROR, FAIL, PASS, TIMEOUT, Sandbox, SandboxLimits

FAST = SandboxLimits(wall_time_s=3.0, cpu_time_s=1)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(FAST, allow_code_execution=True, workers=2)


def _host_processes_running(marker: str) -> list[int]:
    """Host pids whose command line mentions ``marker`` (the sandbox's program path)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


def _process_count() -> int:
    return sum(1 for entry in os.listdir("/proc") if entry.isdigit())


def test_code_execution_requires_explicit_opt_in() -> None:
    with pytest.raises(PermissionError, match="allow_code_execution"):
        Sandbox()


@pytest.mark.parametrize("source,verdict,reason", [
    ("print('ok')", PASS, ""),
    ("assert 1 + 1 == 3", FAIL, "AssertionError"),
    ("raise ValueError('bad input')", FAIL, "ValueError: bad input"),
    ("def f(:\n  pass", FAIL, "SyntaxError"),
    ("import sys; sys.exit(3)", FAIL, "exit code 3"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", ERROR, "SIGSEGV"),
])
def test_verdicts(sandbox: Sandbox, source: str, verdict: str, reason: str) -> None:
    result = sandbox.run_python(source)
    assert result.verdict == verdict
    assert reason in result.reason


def test_stdout_and_stdin(sandbox: Sandbox) -> None:
    result = sandbox.run_python("import sys; print(sys.stdin.read().upper())", stdin="hello")
    assert result.passed and result.stdout == "HELLO\n"


def test_infinite_loop_times_out_on_cpu_limit(sandbox: Sandbox) -> None:
    result = sandbox.run_python("while True:\n    pass")
    assert (result.verdict, result.reason) == (TIMEOUT, "cpu-time limit")
    assert result.wall_s < FAST.wall_time_s


def test_sleeping_program_times_out_on_wall_clock(sandbox: Sandbox) -> None:
    result = sandbox.run_python("import time\ntime.sleep(60)", limits=SandboxLimits(wall_time_s=0.5))
    assert (result.verdict, result.reason) == (TIMEOUT, "wall-time limit")
    assert result.wall_s < 5


@pytest.mark.parametrize("source", [
    "x = bytearray(50 * 2**30)",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 2**20))",
])
def test_memory_bomb_is_stopped_by_the_address_space_limit(sandbox: Sandbox, source: str) -> None:
    # generous time limits: zero-filling 1 GiB on a loaded machine must end as "memory", not "timeout"
    result = sandbox.run_python(source, limits=SandboxLimits(wall_time_s=20, cpu_time_s=10))
    assert result.verdict == ERROR and result.reason.startswith("memory limit")


def test_fork_bomb_hits_the_process_limit_and_leaves_nothing(sandbox: Sandbox) -> None:
    before = _process_count()
    result = sandbox.run_python("import os\nwhile True:\n    os.fork()")
    assert result.verdict == ERROR and result.reason.startswith("process limit")
    assert not _host_processes_running("/sandbox/main.py")
    assert _process_count() <= before + 2  # the host is back where it was (other tests' noise aside)


def test_busy_orphan_is_killed_when_the_program_ends(sandbox: Sandbox) -> None:
    source = ("import os, sys\n"
              "if os.fork() == 0:\n"
              "    os.setsid()\n"  # leave the process group too: only the PID namespace can catch it
              "    while True:\n        pass\n"
              "print('parent exits')\n")
    result = sandbox.run_python(source)
    assert result.verdict == PASS and result.stdout == "parent exits\n"
    assert not _host_processes_running("/sandbox/main.py")


def test_writes_outside_the_working_directory_do_not_reach_the_host(sandbox: Sandbox, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    source = (f"import os\n"
              f"for path in [{str(victim)!r}, {str(tmp_path / 'new.txt')!r}, '/usr/pwned', '/etc/pwned', "
              f"{str(Path.home() / 'pwned')!r}]:\n"
              f"    try:\n        open(path, 'w').write('pwned')\n        print('WROTE', path)\n"
              f"    except OSError as exc:\n        print('blocked', path, type(exc).__name__)\n"
              f"open('/tmp/scratch', 'w').write('private tmp is fine')\n"
              f"open('inside.txt', 'w').write('the working directory is writable')\n")
    result = sandbox.run_python(source)
    assert result.passed, result.stderr
    assert "WROTE" not in result.stdout and result.stdout.count("blocked") == 5
    assert victim.read_text() == "original"
    assert not (tmp_path / "new.txt").exists() and not Path("/usr/pwned").exists()
    assert not Path("/etc/pwned").exists() and not (Path.home() / "pwned").exists()


def test_host_files_outside_the_allow_list_are_invisible(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "credentials"
    secret.write_text("hunter2")
    result = sandbox.run_python(f"print(open({str(secret)!r}).read())")
    assert result.verdict == FAIL and "FileNotFoundError" in result.reason


def test_loopback_connect_is_refused_and_reaches_no_host_server(sandbox: Sandbox) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        result = sandbox.run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)")
        assert result.verdict == FAIL and "Network is unreachable" in result.reason
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever connected
    finally:
        server.close()


def test_parent_environment_secrets_are_not_inherited(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFIR_TEST_API_KEY", "sk-very-secret")
    source = ("import os\n"
              "print(os.environ.get('INFIR_TEST_API_KEY'))\n"
              "leaks = []\n"
              "for pid in os.listdir('/proc'):\n"
              "    if pid.isdigit():\n"
              "        try:\n            leaks.append(open(f'/proc/{pid}/environ', 'rb').read())\n"
              "        except OSError:\n            pass\n"
              "print(any(b'sk-very-secret' in env for env in leaks))\n")
    result = sandbox.run_python(source)
    assert result.passed, result.stderr
    assert result.stdout.split() == ["None", "False"]
    assert "sk-very-secret" not in result.stdout + result.stderr


def test_host_processes_are_invisible(sandbox: Sandbox) -> None:
    result = sandbox.run_python("import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    assert result.passed
    assert str(os.getpid()) not in result.stdout.strip("[]\n").split(", ")
    assert len(result.stdout.split(",")) <= 3  # PID 1 (our init) and the program


def test_output_flood_is_cut_at_the_limit(sandbox: Sandbox) -> None:
    result = sandbox.run_python("while True:\n    print('x' * 10000)",
                                limits=SandboxLimits(max_output_bytes=100_000, wall_time_s=5))
    assert (result.verdict, result.reason) == (ERROR, "output limit exceeded")
    assert len(result.stdout) <= 100_000


def test_parallel_runs_keep_their_order(sandbox: Sandbox) -> None:
    results = sandbox.run_python_many([f"print({i} * {i})" for i in range(8)])
    assert [r.stdout.strip() for r in results] == [str(i * i) for i in range(8)]


def test_bad_limits_and_file_names_are_named() -> None:
    with pytest.raises(ValueError, match="sandbox.cpu_time_s"):
        SandboxLimits(cpu_time_s=0)
    with pytest.raises(ValueError, match="unknown limit"):
        SandboxLimits.from_mapping({"wall_time": 3})
    with pytest.raises(ValueError, match="plain name"):
        Sandbox(allow_code_execution=True).run_python("print(1)", files={"../escape.py": ""})


def test_extra_read_only_paths_are_readable_not_writable(tmp_path: Path) -> None:
    """Paths under /tmp (e.g. a CI virtualenv) stay visible above the sandbox's private /tmp."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data.txt").write_text("visible")
    sandbox = Sandbox(FAST, allow_code_execution=True, extra_ro_paths=[str(shared)])
    source = (f"print(open({str(shared / 'data.txt')!r}).read())\n"
              f"try:\n    open({str(shared / 'data.txt')!r}, 'w')\nexcept OSError as exc:\n    print(exc.errno)\n"
              f"open('/tmp/scratch', 'w').write('ok')\n")
    result = sandbox.run_python(source)
    assert result.passed, result.stderr
    assert result.stdout.split() == ["visible", "30"]  # EROFS
    assert (shared / "data.txt").read_text() == "visible"
