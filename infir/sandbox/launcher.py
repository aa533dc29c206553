"""Runs inside the sandbox boundary: builds the namespaces, the read-only root, then the program.

This file is executed as a script (``python -I -S launcher.py SPEC_JSON``) and imports only the
standard library, so nothing from the host's site-packages runs with the sandbox's privileges.
Layout of the isolation, in order:

1. (host uid 0 only) fork a *mapper* that stays in the initial user namespace, so the program can
   later run as an unprivileged kernel uid (65534): RLIMIT_NPROC never applies to uid 0.
2. ``unshare`` user, mount, network, PID, IPC and UTS namespaces: no network (only a down
   loopback), no view of host processes, and mounts that vanish with the sandbox.
3. A new root on a small tmpfs holding read-only binds of the interpreter and system libraries only
   (an allow-list: no /root, /home, /work, /run sockets, /etc secrets), a fresh /proc, a private
   /tmp and a size-limited ``/sandbox`` working directory with the program's files copied in.
4. PID 1 of the new PID namespace forks the program, waits for it and reports its wait status;
   when PID 1 exits the kernel kills every process left in the namespace (orphans included).

Every failure before ``exec`` is reported on the status pipe as a setup error, never as a verdict.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import struct
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID = 0x1, 0x2
SYS_MOUNT_SETATTR = 442  # same number on every architecture (syscalls added after 5.1 are unified)
SANDBOX_UID = 1000  # the program's uid inside the namespace
NOBODY = 65534  # kernel uid the program runs as when the host runs as root
WORKDIR = "/sandbox"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


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
        if not ok:
            raise SetupError("writing uid_map/gid_map from the root mapper failed")
    else:
        uid, gid = os.getuid(), os.getgid()  # still the outer ids until the maps exist
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{SANDBOX_UID} {uid} 1\n")
        _write("/proc/self/gid_map", f"{SANDBOX_UID} {gid} 1\n")
    return as_root


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


def _exec_program(spec: dict, as_root: bool) -> None:
    """In the program's process: drop to the sandbox uid, apply rlimits, exec. Never returns."""
    try:
        os.set_inheritable(_status_fd, False)  # closed by exec; still usable to report an exec failure
        stdin = os.open(WORKDIR + "/.stdin" if spec["has_stdin"] else "/dev/null", os.O_RDONLY)
        os.dup2(stdin, 0)
        if as_root:
            os.setgroups([])
            os.setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
            os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
        limits = spec["limits"]
        cpu = limits["cpu_time_s"]
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL a second later
        _limit(resource.RLIMIT_AS, limits["address_space_bytes"])
        _limit(resource.RLIMIT_NPROC, limits["max_processes"])
        _limit(resource.RLIMIT_FSIZE, limits["max_file_bytes"])
        _limit(resource.RLIMIT_NOFILE, limits["max_open_files"])
        _limit(resource.RLIMIT_CORE, 0)
        os.execve(spec["argv"][0], spec["argv"], spec["env"])
    except BaseException as exc:  # noqa: BLE001 - reported, then the process ends
        _report({"setup_error": f"exec {spec['argv'][0]}: {exc}"})
    finally:
        os._exit(125)  # reached only when exec failed


def _run_as_init(spec: dict, root: str, as_root: bool) -> None:
    """Step 4, as PID 1: fresh /proc, chroot, fork the program, reap until it ends. Never returns."""
    try:
        _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None, "mount /proc")
        _set_mount_attrs(f"{root}/proc", MOUNT_ATTR_RDONLY, 0, True, "make /proc read-only")
        os.chroot(root)
        os.chdir(WORKDIR)
        program = os.fork()
        if program == 0:
            _exec_program(spec, as_root)
        while True:
            pid, status, usage = os.wait4(-1, 0)
            if pid == program:
                break
        _report({"status": status, "cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_kb": usage.ru_maxrss})
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001
        _report({"setup_error": str(exc)})
    finally:
        os._exit(125)  # PID 1 normally leaves through the os._exit(0) above


def main() -> None:
    global _status_fd
    spec = json.loads(sys.argv[1])
    _status_fd = int(spec["status_fd"])
    try:
        as_root = _enter_namespaces()
        root = _build_root(spec)
    except (OSError, SetupError) as exc:
        _report({"setup_error": str(exc)})
        sys.exit(125)
    init = os.fork()
    if init == 0:
        _run_as_init(spec, root, as_root)
    _, status = os.waitpid(init, 0)
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 125)


if __name__ == "__main__":
    main()
