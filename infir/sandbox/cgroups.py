"""Whole-program limits through cgroups: memory (shared memory, memfd and tmpfs included), processes, CPU rate.

Per-process rlimits cannot bound a program's tree: SysV shared memory, memfd files and forked children each
filling their own address space all grow host memory past ``RLIMIT_AS`` and are charged to no process, so the
host's OOM killer would pick the trainer. A cgroup charges every page the program touches (anonymous,
shmem, tmpfs) to one group with one limit. Routes, decided once per host process:

- ``cgroup-v2``: a child of this process's own cgroup, where ``memory`` and ``pids`` are delegated
  (enabled in its ``cgroup.subtree_control``, or enabled by us when the kernel allows it);
- ``cgroup-v1``: one child per hierarchy (``memory``, ``pids``, ``cpu``) under this process's own group
  in each (root in a VM or container with writable v1 hierarchies);
- ``rlimits``: neither is writable (unprivileged without delegation). The program then has only the
  per-process rlimits, the small IPC-namespace shm limits, ``RLIMIT_FSIZE`` per memfd and
  ``RLIMIT_NOFILE``; see the README's *Known limits* for the bound that leaves.

Groups are named ``infir-sandbox-<pid>-<start time>-<n>`` after the host process that made them, so a
later host process removes the stale ones of dead owners (a killed trainer) and never touches others'.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "infir-sandbox-"
CGROUP_V2, CGROUP_V1, RLIMITS = "cgroup-v2", "cgroup-v1", "rlimits"
CPU_PERIOD_US = 100_000  # CFS bandwidth period; the kernel's default
_V1_CONTROLLERS = ("memory", "pids", "cpu")  # cpu is optional: without it there is no rate limit
_counter = itertools.count()


@dataclass(frozen=True)
class GroupUsage:
    """What the group measured for one program: its peak memory and how many processes the OOM killer took."""

    memory_peak_bytes: int | None
    oom_kills: int


def _read(path: Path) -> str:
    return path.read_text().strip()


def _stat_field(text: str, key: str) -> int:
    """``key N`` lines (memory.events, memory.oom_control)."""
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def _own_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (ticks since boot): tells a live owner from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _group_name() -> str:
    pid = os.getpid()
    return f"{PREFIX}{pid}-{_own_start_time(pid)}-{next(_counter)}"


def _owner_alive(name: str) -> bool:
    parts = name[len(PREFIX):].split("-")
    if len(parts) != 3 or not parts[0].isdigit():
        return True  # not ours to judge
    return _own_start_time(int(parts[0])) == parts[1]


def _remove_group(path: Path, attempts: int = 50) -> None:
    """Kill what is left in a group, then rmdir it (the kernel frees it once its last task has exited)."""
    for _ in range(attempts):
        try:
            for pid in _read(path / "cgroup.procs").split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        except OSError:
            pass
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                log.warning("sandbox: cannot remove cgroup %s: %s", path, exc)
                return
        time.sleep(0.02)
    log.warning("sandbox: cgroup %s still busy; left in place (removed by the next start)", path)


def remove_stale_groups(parent: Path) -> list[str]:
    """Remove ``infir-sandbox-*`` groups under ``parent`` whose owning process is gone; returns their names."""
    removed = []
    try:
        entries = sorted(p for p in parent.iterdir() if p.name.startswith(PREFIX) and p.is_dir())
    except OSError:
        return removed
    for entry in entries:
        if not _owner_alive(entry.name):
            _remove_group(entry)
            if not entry.exists():
                removed.append(entry.name)
    return removed


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount root, mount point, fstype, super options) of the cgroup filesystems in /proc/self/mountinfo."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((fields[3], fields[4], tail[0], set(tail[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup per hierarchy: ``""`` for v2, each v1 controller name otherwise."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _under_mount(mount_root: str, mount_point: str, own: str) -> Path:
    relative = own[len(mount_root):] if mount_root != "/" and own.startswith(mount_root) else own
    return Path(mount_point + "/" + relative.lstrip("/"))


class RunGroup:
    """The cgroup(s) of one program run: the launcher joins them, the host reads usage and removes them."""

    def __init__(self, route: str, dirs: dict[str, Path]) -> None:
        self.route = route
        self.dirs = dirs  # controller ("" for the v2 group) -> directory

    @property
    def procs_files(self) -> list[str]:
        return sorted({str(d / "cgroup.procs") for d in self.dirs.values()})

    def usage(self) -> GroupUsage:
        if self.route == CGROUP_V2:
            group = self.dirs[""]
            peak = group / "memory.peak"  # kernel >= 5.19
            events = _read(group / "memory.events")
            return GroupUsage(int(_read(peak)) if peak.exists() else None, _stat_field(events, "oom_kill"))
        memory = self.dirs["memory"]
        oom = _stat_field(_read(memory / "memory.oom_control"), "oom_kill")
        return GroupUsage(int(_read(memory / "memory.max_usage_in_bytes")), oom)

    def remove(self) -> None:
        for path in {*self.dirs.values()}:
            _remove_group(path)


class CgroupManager:
    """Finds the route once and makes one limited group per program run."""

    def __init__(self, mode: str = "auto") -> None:
        if mode not in ("auto", "required", "off"):
            raise ValueError(f"sandbox cgroups must be 'auto', 'required' or 'off', got {mode!r}")
        self.mode = mode
        self._lock = threading.Lock()
        self._parents: dict[str, Path] | None = None
        self._route = RLIMITS
        self._detected = False

    @property
    def route(self) -> str:
        self._detect()
        return self._route

    @property
    def parents(self) -> list[Path]:
        """The directories the run groups are made in (one per v1 hierarchy); empty on the rlimits route."""
        self._detect()
        return sorted({*(self._parents or {}).values()})

    def create(self, memory_bytes: int, max_tasks: int, cpu_cores: float) -> RunGroup | None:
        """A fresh group with the limits set, or None on the rlimits route."""
        self._detect()
        if self._parents is None:
            return None
        name = _group_name()
        dirs = {c: parent / name for c, parent in self._parents.items()}
        group = RunGroup(self._route, dirs)
        try:
            for path in {*dirs.values()}:
                path.mkdir()
            if self._route == CGROUP_V2:
                _set_v2_limits(dirs[""], memory_bytes, max_tasks, cpu_cores)
            else:
                _set_v1_limits(dirs, memory_bytes, max_tasks, cpu_cores)
        except OSError:
            group.remove()
            raise
        return group

    def _detect(self) -> None:
        with self._lock:
            if self._detected:
                return
            self._detected = True
            if self.mode == "off":
                return
            problems = []
            for route, finder in ((CGROUP_V2, _v2_parent), (CGROUP_V1, _v1_parents)):
                try:
                    parents = finder()
                    _probe(route, parents)
                except (OSError, ValueError, KeyError) as exc:
                    problems.append(f"{route}: {exc}")
                    continue
                self._parents, self._route = parents, route
                for parent in {*parents.values()}:
                    for stale in remove_stale_groups(parent):
                        log.info("sandbox: removed stale cgroup %s/%s", parent, stale)
                return
            if self.mode == "required":
                raise OSError("sandbox.cgroups=required but no cgroup route works: " + "; ".join(problems))
            log.warning("sandbox: no writable cgroup (%s); whole-program memory is bounded by rlimits only",
                        "; ".join(problems))


def _v2_parent() -> dict[str, Path]:
    own = _own_paths().get("")
    mounts = [m for m in _mounts() if m[2] == "cgroup2"]
    if own is None or not mounts:
        raise ValueError("no cgroup2 hierarchy")
    parent = _under_mount(mounts[0][0], mounts[0][1], own)
    available = set(_read(parent / "cgroup.controllers").split())
    missing = {"memory", "pids"} - available
    if missing:
        raise ValueError(f"controllers {sorted(missing)} not delegated to {parent}")
    wanted = {"memory", "pids", "cpu"} & available
    enabled = set(_read(parent / "cgroup.subtree_control").split())
    if not wanted <= enabled:
        # fails with EBUSY when our own group holds processes (v2's no-internal-processes rule)
        (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted - enabled)))
    return {"": parent}


def _v1_parents() -> dict[str, Path]:
    own = _own_paths()
    parents = {}
    for root, point, fstype, options in _mounts():
        if fstype != "cgroup":
            continue
        for controller in _V1_CONTROLLERS:
            if controller in options and controller in own:
                parents[controller] = _under_mount(root, point, own[controller])
    missing = {"memory", "pids"} - set(parents)
    if missing:
        raise ValueError(f"no v1 hierarchy for {sorted(missing)}")
    return parents


def _probe(route: str, parents: dict[str, Path]) -> None:
    """Make and remove one group, so a read-only hierarchy is found before any program runs."""
    name = _group_name()
    made = []
    try:
        for parent in {*parents.values()}:
            (parent / name).mkdir()
            made.append(parent / name)
        memory = parents["" if route == CGROUP_V2 else "memory"] / name
        limit_file = "memory.max" if route == CGROUP_V2 else "memory.limit_in_bytes"
        (memory / limit_file).write_text(str(64 << 20))
    finally:
        for path in made:
            _remove_group(path)


def _set_v2_limits(group: Path, memory_bytes: int, max_tasks: int, cpu_cores: float) -> None:
    (group / "memory.max").write_text(str(memory_bytes))
    if (group / "memory.swap.max").exists():
        (group / "memory.swap.max").write_text("0")
    (group / "pids.max").write_text(str(max_tasks))
    if (group / "cpu.max").exists():
        (group / "cpu.max").write_text(f"{int(cpu_cores * CPU_PERIOD_US)} {CPU_PERIOD_US}")


def _set_v1_limits(dirs: dict[str, Path], memory_bytes: int, max_tasks: int, cpu_cores: float) -> None:
    memory = dirs["memory"]
    (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
    if (memory / "memory.memsw.limit_in_bytes").exists():  # memory+swap: no escape into swap
        (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
    (dirs["pids"] / "pids.max").write_text(str(max_tasks))
    if "cpu" in dirs:
        (dirs["cpu"] / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        (dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(int(cpu_cores * CPU_PERIOD_US)))
