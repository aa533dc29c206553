"""Runs inside the sandbox boundary: builds the namespaces, the read-only root, then the program.

This file is executed as a script (``python -I -S /dev/fd/N``, N open on this file) and imports only
the standard library, so nothing from the host's site-packages runs with the sandbox's privileges. Its spec comes
on stdin, not on the command line: ``/proc/1/cmdline`` inside the sandbox shows no host path or limit.
Layout of the isolation, in order:

0. join the cgroup(s) the host made for this run (whole-program memory, pids and CPU rate), and
   die with the host thread that started us (``PR_SET_PDEATHSIG``).
1. (host uid 0 only) fork a *mapper* that stays in the initial user namespace, so the program can
   later run as an unprivileged kernel uid (65534): RLIMIT_NPROC never applies to uid 0.
2. ``unshare`` user, mount, network, PID, IPC and UTS namespaces: no network (only a down
   loopback), no view of host processes, mounts that vanish with the sandbox, and an IPC namespace
   whose SysV shared-memory and message-queue limits PID 1 sets small (step 4).
3. A new root on a small tmpfs holding read-only binds of the interpreter and system libraries only
   (an allow-list: no /root, /home, /work, /run sockets, /etc secrets), a fresh /proc, a private
   /tmp and a size-limited ``/sandbox`` working directory with the program's files copied in.
4. PID 1 of the new PID namespace forks the program, sums the CPU time of every process in the
   namespace and kills them all past the budget; when the program ends it kills what it left
   behind, reaps everything (so the CPU of children nobody waited for is counted) and reports.

On SIGTERM (the host's wall-clock deadline) this process kills PID 1, reaps it and exits, so nothing
is left for the host's init to reap. Every failure before ``exec`` is reported on the status pipe as
a setup error, never as a verdict.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import math
import os
import resource
import shutil
import signal
import struct
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID = 0x1, 0x2
SYS_MOUNT_SETATTR = 442  # same number on every architecture (syscalls added after 5.1 are unified)
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
SANDBOX_UID = 1000  # the program's uid inside the namespace
NOBODY = 65534  # kernel uid the program runs as when the host runs as root
WORKDIR = "/sandbox"
TOKEN_FD, RESULT_FD = 3, 4  # where the harness finds its token and writes it back (see harness.py)
HIGH_FD = 10  # the host's pipes are moved above the program's fds 0-4
CPU_POLL_S = 0.05  # how often PID 1 sums the namespace's CPU time
MSG_QUEUES = 16  # SysV message queues (16 KiB each by default) instead of 32000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_children: list[int] = []  # the mapper and PID 1, killed and reaped on SIGTERM


class SetupError(Exception):
    """A step of building the sandbox failed; the message names the step."""


def _check(result: int, step: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupError(f"{step}: {os.strerror(errno)} (errno {errno})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None, step: str) -> None:
    enc = (lambda s: None if s is None else s.encode())
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), step)


def _set_mount_attrs(path: str, set_attrs: int, clear_attrs: int, recursive: bool, step: str) -> None:
    attr = ctypes.create_string_buffer(struct.pack("QQQQ", set_attrs, clear_attrs, 0, 0))
    flags = AT_RECURSIVE if recursive else 0
    _check(_libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), flags, attr, 32), step)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


_status_fd = -1  # the host's status pipe; its number comes with the spec


def _report(message: dict) -> None:
    """Send one JSON line to the host; best effort (the host treats silence as a killed sandbox)."""
    try:
        os.write(_status_fd, (json.dumps(message) + "\n").encode())
    except OSError:
        pass


def _move_high(fd: int) -> int:
    """Re-number a host pipe above the program's fds, close-on-exec, so dup2 onto 3 and 4 cannot clobber it."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, HIGH_FD)
    os.close(fd)
    return moved


def _die_with_parent(parent: int | None) -> None:
    """SIGKILL when the process (thread) that started us dies; exit now if it already has.

    PID 1 passes None: its parent is outside its PID namespace, so getppid() reads 0 there.
    """
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if parent is not None and os.getppid() != parent:
        os._exit(125)


def _join_cgroups(procs_files: list[str]) -> None:
    """Step 0: everything forked from here on is charged to the run's cgroup(s)."""
    for path in procs_files:
        try:
            _write(path, str(os.getpid()))
        except OSError as exc:
            raise SetupError(f"join cgroup {path}: {exc}") from exc


def _kill_children() -> None:
    """Kill PID 1 (and with it the namespace) and the mapper, and reap them."""
    for pid in _children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in _children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _on_sigterm(signum: int, frame: object) -> None:
    """The host's deadline: nothing of the sandbox is left for the host's init to reap."""
    _kill_children()
    os._exit(137)


def _start_mapper() -> tuple[int, int, int]:
    """Fork a root helper that writes our uid/gid maps once we have unshared (step 1)."""
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    target = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(go_w)
            os.close(done_r)
            if os.read(go_r, 1) != b"1":
                os._exit(1)
            mapping = f"0 0 1\n{SANDBOX_UID} {NOBODY} 1\n"
            _write(f"/proc/{target}/uid_map", mapping)
            _write(f"/proc/{target}/gid_map", mapping)
            os.write(done_w, b"1")
            os._exit(0)
        except BaseException:  # noqa: BLE001 - the parent reports the missing map
            os._exit(1)
    _children.append(pid)
    os.close(go_r)
    os.close(done_w)
    return pid, go_w, done_r


def _enter_namespaces() -> bool:
    """Unshare everything; returns True when the program must switch to the sandbox uid."""
    as_root = os.getuid() == 0
    mapper = _start_mapper() if as_root else None
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    _check(_libc.unshare(flags), "unshare(user, mount, net, pid, ipc, uts) - are user namespaces disabled?")
    if mapper is not None:
        pid, go_w, done_r = mapper
        os.write(go_w, b"1")
        ok = os.read(done_r, 1) == b"1"
        os.waitpid(pid, 0)
        _children.remove(pid)
        if not ok:
            raise SetupError("writing uid_map/gid_map from the root mapper failed")
    else:
        uid, gid = os.getuid(), os.getgid()  # still the outer ids until the maps exist
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{SANDBOX_UID} {uid} 1\n")
        _write("/proc/self/gid_map", f"{SANDBOX_UID} {gid} 1\n")
    return as_root


def _limit_ipc(proc: str, shm_bytes: int) -> bool:
    """Shrink the new IPC namespace's SysV limits (the defaults are effectively unlimited).

    Shared memory is charged to no process, so rlimits do not see it. Returns False where the
    namespace's root cannot set them: an unprivileged host, whose one-uid map leaves uid 0 (the
    sysctl files' owner) unmapped; the host then logs it and only a cgroup bounds shared memory.
    """
    page = os.sysconf("SC_PAGE_SIZE")
    settings = {"shmmax": shm_bytes, "shmall": max(1, shm_bytes // page), "shmmni": 16, "msgmni": MSG_QUEUES}
    try:
        for name, value in settings.items():
            _write(f"{proc}/sys/kernel/{name}", str(value))
    except OSError:
        return False
    return True


def _bind_into(root: str, host_path: str) -> None:
    """Expose ``host_path`` read-only at the same path under ``root`` (symlinks recreated)."""
    real = os.path.realpath(host_path)
    if not os.path.exists(real):
        return
    inside = root + host_path
    if host_path != real:
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        if not os.path.lexists(inside):
            os.symlink(real, inside)
        _bind_into(root, real)
        return
    if os.path.lexists(inside):
        return  # already provided by an enclosing bind
    if os.path.isdir(real):
        os.makedirs(inside, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        open(inside, "w").close()
    _mount(real, inside, None, MS_BIND | MS_REC, None, f"bind {real}")


def _build_root(spec: dict) -> str:
    """Steps 2-3: the allow-listed read-only root with private writable /tmp and /sandbox."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None, "make mounts private")
    root = spec["root"]
    size = int(spec["tmpfs_bytes"])
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755", "tmpfs for the new root")
    os.makedirs(f"{root}/tmp")
    # /tmp first: read-only paths below it (a venv in /tmp) are bound on top of the private tmpfs
    _mount("tmpfs", f"{root}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777", "tmpfs /tmp")
    for path in sorted(spec["ro_paths"], key=len):
        _bind_into(root, path)
    for name in ("proc", WORKDIR.lstrip("/")):
        os.makedirs(f"{root}/{name}", exist_ok=True)
    _set_mount_attrs(root, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, True, "make the new root read-only")
    _set_mount_attrs(f"{root}/tmp", 0, MOUNT_ATTR_RDONLY, False, "make /tmp writable again")
    owner = f"uid={SANDBOX_UID},gid={SANDBOX_UID}"
    _mount("tmpfs", root + WORKDIR, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=0755,{owner}",
           "tmpfs " + WORKDIR)
    for name in os.listdir(spec["files"]):
        shutil.copyfile(os.path.join(spec["files"], name), f"{root}{WORKDIR}/{name}")
    return root


def _limit(kind: int, value: int | None) -> None:
    if value is not None:
        resource.setrlimit(kind, (value, value))


def _exec_program(spec: dict, as_root: bool, token_fd: int, result_fd: int) -> None:
    """In the program's process: drop to the sandbox uid, apply rlimits, exec. Never returns."""
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, set())  # PID 1 blocks SIGCHLD; exec keeps the mask
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stdin = os.open(WORKDIR + "/.stdin" if spec["has_stdin"] else "/dev/null", os.O_RDONLY)
        os.dup2(stdin, 0)
        if stdin != 0:
            os.close(stdin)
        if token_fd >= 0:  # the harness's channels, at the numbers it expects
            os.dup2(token_fd, TOKEN_FD)
            os.dup2(result_fd, RESULT_FD)
        if as_root:
            os.setgroups([])
            os.setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
            os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
        limits = spec["limits"]
        cpu = math.ceil(limits["cpu_time_s"])
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL a second later
        _limit(resource.RLIMIT_AS, limits["address_space_bytes"])
        _limit(resource.RLIMIT_NPROC, limits["max_processes"])
        _limit(resource.RLIMIT_FSIZE, limits["max_file_bytes"])  # also bounds each memfd
        _limit(resource.RLIMIT_NOFILE, limits["max_open_files"])
        _limit(resource.RLIMIT_MSGQUEUE, 0)  # no POSIX message queues
        _limit(resource.RLIMIT_CORE, 0)
        os.execve(spec["argv"][0], spec["argv"], spec["env"])
    except BaseException as exc:  # noqa: BLE001 - reported, then the process ends
        _report({"setup_error": f"exec {spec['argv'][0]}: {exc}"})
    finally:
        os._exit(125)  # reached only when exec failed


def _namespace_cpu_s(clock_ticks: int) -> float:
    """CPU seconds of everything the program started, alive or reaped, read from PID 1's view.

    A live process's own time plus the time of the children it reaped (cutime, cstime), summed over
    every process in the namespace but PID 1, plus what PID 1 itself reaped: each process counts once.
    """
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = reaped.ru_utime + reaped.ru_stime
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or entry == "1":
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone between listdir and open
        total += sum(int(v) for v in fields[11:15]) / clock_ticks
    return total


def _kill_namespace() -> None:
    try:
        os.kill(-1, signal.SIGKILL)  # from PID 1: every other process of the namespace
    except ProcessLookupError:
        pass


def _supervise(program: int, cpu_budget_s: float) -> tuple[int, bool]:
    """Reap children until the program ends, killing the namespace past the CPU budget.

    Returns the program's wait status and whether the budget was exceeded. SIGCHLD is blocked, so a
    child's exit wakes ``sigtimedwait`` at once; the CPU sum is read between exits every CPU_POLL_S.
    """
    clock_ticks = os.sysconf("SC_CLK_TCK")
    exceeded = False
    while True:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                raise SetupError("the program's process vanished") from None
            if pid == 0:
                break
            if pid == program:
                return status, exceeded
        if not exceeded and _namespace_cpu_s(clock_ticks) >= cpu_budget_s:
            exceeded = True
            _kill_namespace()
        signal.sigtimedwait([signal.SIGCHLD], CPU_POLL_S)


def _run_as_init(spec: dict, root: str, as_root: bool, token_fd: int, result_fd: int) -> None:
    """Step 4, as PID 1: fresh /proc, chroot, fork the program, supervise, reap all. Never returns."""
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        _die_with_parent(None)
        _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")  # no /proc/1/mem, fd
        _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None, "mount /proc")
        # through the namespace's own /proc: its owner (this user namespace) may set the IPC sysctls
        _report({"ipc_limited": _limit_ipc(f"{root}/proc", int(spec["limits"]["shm_bytes"]))})
        _set_mount_attrs(f"{root}/proc", MOUNT_ATTR_RDONLY, 0, True, "make /proc read-only")
        os.chroot(root)
        os.chdir(WORKDIR)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        program = os.fork()
        if program == 0:
            _exec_program(spec, as_root, token_fd, result_fd)
        for fd in (token_fd, result_fd):
            if fd >= 0:
                os.close(fd)  # only the program holds the token's pipe now
        status, cpu_exceeded = _supervise(program, float(spec["limits"]["cpu_time_s"]))
        _kill_namespace()  # whatever the program left behind
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every process reaped: the whole tree
        _report({"status": status, "cpu_s": usage.ru_utime + usage.ru_stime, "cpu_exceeded": cpu_exceeded,
                 "max_rss_kb": usage.ru_maxrss})
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001
        _report({"setup_error": str(exc)})
    finally:
        os._exit(125)  # PID 1 normally leaves through the os._exit(0) above


def main() -> None:
    global _status_fd
    os.close(int(sys.argv[0].rsplit("/", 1)[1]))  # /dev/fd/N: the host's copy of this file, read already
    spec = json.loads(sys.stdin.buffer.read())
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    _status_fd = _move_high(int(spec["status_fd"]))
    token_fd = _move_high(int(spec["token_fd"])) if spec.get("token_fd") is not None else -1
    result_fd = _move_high(int(spec["result_fd"])) if spec.get("result_fd") is not None else -1
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _die_with_parent(int(spec["host_pid"]))
        _join_cgroups(spec["cgroup_procs"])
        as_root = _enter_namespaces()
        root = _build_root(spec)
    except (OSError, SetupError) as exc:
        _report({"setup_error": str(exc)})
        _kill_children()
        sys.exit(125)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # PID 1 is in _children before a kill
    init = os.fork()
    if init == 0:
        _run_as_init(spec, root, as_root, token_fd, result_fd)
    _children.append(init)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    for fd in (token_fd, result_fd):
        if fd >= 0:
            os.close(fd)
    _, status = os.waitpid(init, 0)
    _children.remove(init)
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 125)


if __name__ == "__main__":
    main()
