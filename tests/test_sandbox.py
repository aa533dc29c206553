"""The code sandbox: verdicts, and adversarial programs that must be contained without harming the host.

Tests that look for left-over processes run their program under a unique file name (a marker) and
look for that marker only, so another sandbox on the same machine (another test session, a training
run's eval) cannot make them fail.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from infir.sandbox import ERROR, FAIL, PASS, TIMEOUT, Sandbox, SandboxLimits, SandboxResult
from infir.sandbox.cgroups import PREFIX, RLIMITS, CgroupManager

FAST = SandboxLimits(wall_time_s=3.0, cpu_time_s=1)
MiB = 1 << 20
PR_SET_CHILD_SUBREAPER = 36
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(FAST, allow_code_execution=True, workers=2)


@pytest.fixture(scope="module", params=["auto", "off"])
def any_route(request: pytest.FixtureRequest) -> Sandbox:
    """The sandbox on the host's best route, and on the rlimits-only fallback."""
    return Sandbox(FAST, allow_code_execution=True, cgroups=request.param)


def _host_processes_running(marker: str) -> list[int]:
    """Host pids whose command line mentions ``marker``."""
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


def _run_marked(sandbox: Sandbox, source: str, limits: SandboxLimits | None = None) -> tuple[SandboxResult, str]:
    """Run ``source`` as ``/sandbox/<unique marker>.py``: every process it forks carries the marker."""
    marker = f"infir-test-{uuid.uuid4().hex}"
    result = sandbox.run([sys.executable, "-I", "-B", f"/sandbox/{marker}.py"], {f"{marker}.py": source},
                         limits=limits)
    return result, marker


def _children_of_this_process() -> set[int]:
    pids: set[int] = set()
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            pids.update(int(p) for p in Path(f"/proc/{os.getpid()}/task/{tid}/children").read_text().split())
        except OSError:
            pass
    return pids


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
    ("def f(n):\n    return f(n + 1)\nf(0)", ERROR, "recursion limit (RecursionError"),  # a limit, like memory
])
def test_verdicts(sandbox: Sandbox, source: str, verdict: str, reason: str) -> None:
    result = sandbox.run_python(source)
    assert result.verdict == verdict
    assert reason in result.reason


def test_stdout_and_stdin(sandbox: Sandbox) -> None:
    result = sandbox.run_python("import sys; print(sys.stdin.read().upper())", stdin="hello")
    assert result.passed and result.stdout == "HELLO\n"


def test_infinite_loop_times_out_on_cpu_limit(sandbox: Sandbox) -> None:
    # a generous wall limit: on a loaded machine 1 s of CPU can take several seconds of wall time
    result = sandbox.run_python("while True:\n    pass", limits=SandboxLimits(wall_time_s=60, cpu_time_s=1))
    assert result.verdict == TIMEOUT and result.reason.startswith("cpu-time limit")


def test_cpu_is_limited_for_the_whole_process_tree(sandbox: Sandbox) -> None:
    """Four children of 0.6 s CPU each are each under the 1 s limit; together they are not."""
    source = ("import os, time\n"
              "for _ in range(4):\n"
              "    if os.fork() == 0:\n"
              "        start = time.process_time()\n"
              "        while time.process_time() - start < 0.6:\n            pass\n"
              "        os._exit(0)\n"
              "for _ in range(4):\n    os.wait()\n")
    result = sandbox.run_python(source, limits=SandboxLimits(wall_time_s=60, cpu_time_s=1))
    assert (result.verdict, result.reason) == (TIMEOUT, "cpu-time limit (whole program)")
    assert result.cpu_s >= 1.0


def test_cpu_time_counts_children_nobody_waited_for(sandbox: Sandbox) -> None:
    source = ("import os, time\n"
              "r, w = os.pipe()\n"
              "if os.fork() == 0:\n"
              "    start = time.process_time()\n"
              "    while time.process_time() - start < 0.5:\n        pass\n"
              "    os.write(w, b'done')\n    os._exit(0)\n"
              "os.read(r, 4)\n")  # the parent exits without waiting for its child
    result = sandbox.run_python(source, limits=SandboxLimits(wall_time_s=60, cpu_time_s=5))
    assert result.passed, result.stderr
    assert result.cpu_s >= 0.5


def test_sleeping_program_times_out_on_wall_clock(sandbox: Sandbox) -> None:
    result, marker = _run_marked(sandbox, "import time\ntime.sleep(60)", limits=SandboxLimits(wall_time_s=0.5))
    assert (result.verdict, result.reason) == (TIMEOUT, "wall-time limit")
    assert not _host_processes_running(marker)


def test_a_killed_sandbox_is_reaped_before_the_run_returns(sandbox: Sandbox) -> None:
    """After the wall-clock kill, no sandbox process (PID 1 included) is left for any init to reap.

    This process becomes a child subreaper for the test: whatever the run orphans would be
    re-parented here, and would show among our children.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    before = _children_of_this_process()
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        result = sandbox.run_python("import time\ntime.sleep(60)", limits=SandboxLimits(wall_time_s=0.5))
        orphans = _children_of_this_process() - before
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    for pid in orphans:  # leave nothing behind when the assertion fails
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    assert result.verdict == TIMEOUT
    assert orphans == set()


@pytest.mark.parametrize("source", [
    "x = bytearray(50 * 2**30)",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 2**20))",
])
def test_memory_bomb_is_stopped_by_the_address_space_limit(sandbox: Sandbox, source: str) -> None:
    # generous time limits: zero-filling 1 GiB on a loaded machine must end as "memory", not "timeout"
    result = sandbox.run_python(source, limits=SandboxLimits(wall_time_s=20, cpu_time_s=10))
    assert result.verdict == ERROR and result.reason.startswith("memory limit")


_SYSV_SHM_FILL = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
SEGMENT, held = 32 << 20, 0
for _ in range(48):  # 1.5 GiB, each segment detached after filling: charged to no process's rlimits
    shmid = libc.shmget(0, SEGMENT, 0o1000 | 0o600)
    if shmid < 0:
        print('refused', ctypes.get_errno())
        break
    address = libc.shmat(shmid, None, 0)
    ctypes.memset(address, 1, SEGMENT)
    libc.shmdt(address)
    held += SEGMENT
print('held', held >> 20)
"""


def test_sysv_shared_memory_is_bounded_on_every_route(any_route: Sandbox) -> None:
    limits = SandboxLimits(wall_time_s=60, cpu_time_s=10, memory_bytes=256 * MiB)
    result = any_route.run_python(_SYSV_SHM_FILL, limits=limits)
    held = [int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("held")]
    assert result.verdict in (PASS, ERROR), result.stderr  # refused (pass) or killed by the cgroup (error)
    assert held == [] or held[0] <= limits.tmpfs_bytes // MiB  # the IPC namespace's shm total
    assert "refused" in result.stdout or result.reason.startswith("memory limit")


def _require_cgroup(sandbox: Sandbox) -> None:
    if sandbox.limits_route == RLIMITS:
        pytest.skip("no writable cgroup on this host: memfd and fork-and-fill are bounded per process only")


def test_memfd_files_are_bounded_for_the_whole_program(sandbox: Sandbox) -> None:
    _require_cgroup(sandbox)
    source = ("import os\nfiles = []\n"
              "for _ in range(96):  # 1.5 GiB in 16 MiB memfds, each under RLIMIT_FSIZE\n"
              "    fd = os.memfd_create('fill')\n"
              "    os.write(fd, b'x' * (16 << 20))\n"
              "    files.append(fd)\n"
              "print('held', len(files) * 16)\n")
    limits = SandboxLimits(wall_time_s=60, cpu_time_s=10, memory_bytes=256 * MiB)
    result = sandbox.run_python(source, limits=limits)
    assert result.verdict == ERROR and result.reason.startswith("memory limit (whole program")
    assert "held" not in result.stdout
    assert result.memory_peak_bytes is not None and result.memory_peak_bytes <= limits.memory_bytes
    assert result.limits_route == sandbox.limits_route


def test_forked_children_cannot_fill_memory_past_the_program_limit(sandbox: Sandbox) -> None:
    _require_cgroup(sandbox)
    source = ("import os, time\nholding = 0\n"
              "for _ in range(6):  # 6 x 128 MiB, each child far under its own address-space limit\n"
              "    r, w = os.pipe()\n"
              "    if os.fork() == 0:\n"
              "        os.close(r)\n"
              "        block = b'x' * (128 << 20)\n"
              "        os.write(w, b'1')\n"
              "        time.sleep(60)\n"
              "    os.close(w)\n"
              "    holding += len(os.read(r, 1))\n"
              "print('children holding 128 MiB:', holding)\n")
    limits = SandboxLimits(wall_time_s=60, cpu_time_s=10, memory_bytes=256 * MiB)
    result = sandbox.run_python(source, limits=limits)
    assert result.verdict == ERROR and result.reason.startswith("memory limit (whole program")
    assert result.memory_peak_bytes is not None and result.memory_peak_bytes <= limits.memory_bytes


def test_run_cgroups_are_removed_and_stale_ones_of_dead_owners_too(sandbox: Sandbox) -> None:
    _require_cgroup(sandbox)
    parents = sandbox.cgroups.parents
    sandbox.run_python("print('ok')")
    ours = f"{PREFIX}{os.getpid()}-"
    assert [p.name for parent in parents for p in parent.iterdir() if p.name.startswith(ours)] == []
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid whose owner is gone (and start time "1" matches no live process)
    start_time = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]
    stale, alive = f"{PREFIX}{dead.pid}-1-0", f"{PREFIX}{os.getpid()}-{start_time}-999999"
    for parent in parents:
        (parent / stale).mkdir()
        (parent / alive).mkdir()
    try:
        assert CgroupManager("auto").route == sandbox.limits_route  # a new host process's first start
        assert not any((parent / stale).exists() for parent in parents)
        assert all((parent / alive).exists() for parent in parents)  # a live owner's name: not touched
    finally:
        for parent in parents:
            for name in (stale, alive):
                if (parent / name).exists():
                    (parent / name).rmdir()


def test_fork_bomb_hits_the_process_limit_and_leaves_nothing(sandbox: Sandbox) -> None:
    result, marker = _run_marked(sandbox, "import os\nwhile True:\n    os.fork()")
    # fork() fails with EAGAIN at the process limit, or ENOMEM first when the address-space limit is near
    assert result.verdict == ERROR and result.reason.split(" (")[0] in ("process limit", "memory limit")
    assert not _host_processes_running(marker)


def test_interleaved_tracebacks_still_name_the_limit() -> None:
    """A fork bomb's children write their tracebacks at once: the last line can be a fragment of one."""
    from infir.sandbox.verdict import Ending, classify

    def ending(stderr: str) -> Ending:
        return Ending(wait_status=1 << 8, wall_timed_out=False, output_exceeded=False, cpu_exceeded=False,
                      oom_kills=0, stderr=stderr)

    bomb = ("Traceback (most recent call last):\nTraceback (most recent call last):\n  File \"/sandbox/m.py\"\n"
            "BlockingIOError: [Errno 11] Resource temporarily unavailable\n    os.fork()\n")
    assert classify(ending(bomb))[0] == ERROR and classify(ending(bomb))[1].startswith("process limit")
    # the program's own final exception still decides when it is complete, even after a caught one
    caught = "MemoryError\nTraceback (most recent call last):\nAssertionError: wrong answer\n"
    assert classify(ending(caught)) == (FAIL, "AssertionError: wrong answer")
    assert classify(ending("OSError: [Errno 12] Cannot allocate memory\n"))[1].startswith("memory limit")


def test_busy_orphan_is_killed_even_while_another_sandbox_runs(sandbox: Sandbox) -> None:
    """A neighbour sandbox running /sandbox/main.py at the same time must not make this test fail."""
    neighbour = threading.Thread(target=sandbox.run_python, args=("import time\ntime.sleep(30)",),
                                 kwargs={"limits": SandboxLimits(wall_time_s=4)})
    neighbour.start()
    try:
        for _ in range(200):
            if _host_processes_running(f"{sys.executable}\0-I\0-B\0/sandbox/main.py"):
                break
            threading.Event().wait(0.02)
        source = ("import os, sys\n"
                  "if os.fork() == 0:\n"
                  "    os.setsid()\n"  # leave the process group too: only the PID namespace can catch it
                  "    while True:\n        pass\n"
                  "print('parent exits')\n")
        result, marker = _run_marked(sandbox, source)
        assert result.verdict == PASS and result.stdout == "parent exits\n"
        assert not _host_processes_running(marker)
    finally:
        neighbour.join()


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


def test_the_launch_spec_is_not_on_any_command_line(sandbox: Sandbox) -> None:
    source = ("import os\n"
              "for pid in sorted(p for p in os.listdir('/proc') if p.isdigit()):\n"
              "    print(open(f'/proc/{pid}/cmdline', 'rb').read())\n")
    result = sandbox.run_python(source)
    assert result.passed, result.stderr
    # the interpreter's own path is visible by design (it is bound read-only); the launcher's is not
    for leaked in ("infir-sandbox-", "ro_paths", "cpu_time_s", "cgroup", str(REPO / "infir")):
        assert leaked not in result.stdout


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
