"""The ``ray`` executor: shard tasks as Ray tasks, on a local Ray instance or an existing cluster.

``address`` unset starts a private local instance with ``workers`` CPUs (stopped by ``close``); set
(``host:port``, or ``auto`` inside a cluster job) joins that cluster, where ``workers`` is the number of tasks
a pass is cut into (the cluster's CPUs when it asks for more). Every node needs this repository at the same
path, the same Python environment and the run's cache directory on a shared filesystem (the README's
"Curation on a Ray cluster"). Ray re-runs a task whose worker died (``max_retries``); tasks skip shards whose
completion markers exist, so a retry redoes only the unfinished ones.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]


class RayExecutor:
    def __init__(self, workers: int = 1, address: str | None = None, max_retries: int = 3) -> None:
        import ray

        self._ray = ray
        self.max_retries = max_retries
        self._started_here = False
        if not ray.is_initialized():
            # Workers import infir from this checkout whether or not it is pip-installed.
            pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
            runtime_env = {"env_vars": {"PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1"}}
            if address is None:  # "local": a private instance, never a cluster some other job started here
                ray.init(address="local", num_cpus=int(workers), include_dashboard=False, log_to_driver=False,
                         runtime_env=runtime_env, configure_logging=False)
                self._started_here = True
                self._reaper = _reap_on_driver_death(_local_instance_pids())
            else:
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=False, configure_logging=False)
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, min(int(workers), cluster_cpus) if address is None else int(workers))
        log.info("ray executor: %d task slots on a cluster of %d CPUs (%s)", self.workers, cluster_cpus,
                 "local instance" if self._started_here else address)

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], desc: str) -> list[Any]:
        if not tasks:
            return []
        remote = self._ray.remote(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False)(fn)
        refs = [remote.options(name=f"{desc}[{i}]").remote(task) for i, task in enumerate(tasks)]
        try:
            return self._ray.get(refs)
        except BaseException:
            for ref in refs:  # a failed shard (a full disk): don't run the rest
                self._ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
            self._reaper.kill()
            self._reaper.wait()


def _local_instance_pids() -> list[int]:
    """The processes of the Ray instance this driver started (GCS, raylet, log monitor, ...)."""
    from ray._private import worker

    node = worker.global_worker.node
    return [info.process.pid for infos in node.all_processes.values() for info in infos if info.process is not None]


_REAPER = """
import os, signal, sys, time
driver, known = int(sys.argv[1]), {int(p) for p in sys.argv[2:]}


def children():
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found[int(entry)] = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return found


while os.getppid() == driver:  # the tree is re-read while it is intact: raylet's agents and workers join it
    parent_of = children()
    grew = True
    while grew:
        more = {pid for pid, ppid in parent_of.items() if ppid in known} - known
        known |= more
        grew = bool(more)
    known = {pid for pid in known if pid in parent_of}
    time.sleep(0.5)
for pid in known:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
"""


def _reap_on_driver_death(pids: list[int]) -> subprocess.Popen:
    """A watcher that kills the local Ray instance if this driver dies without ``close`` (kill -9 runs no
    cleanup, and Ray's head processes would outlive it, holding memory and answering the next ``ray.init``).
    Its workers exit with their raylet; a relaunch resumes from the completion markers."""
    return subprocess.Popen([sys.executable, "-c", _REAPER, str(os.getpid()), *map(str, pids)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
