"""The ``local`` executor: this process (1 worker) or a pool of worker processes on this machine.

Workers die with the driver, even when it is killed with -9 (each watches the driver's pidfd), so a killed
run leaves no idle process holding memory; the next run resumes from the completion markers.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from tqdm.auto import tqdm

# Imported once by the fork server, so forked workers start with them loaded instead of importing them each.
PRELOAD = ("infir.data.curation.passes", "infir.data.curation.stages", "infir.data.curation.heuristics",
           "infir.data.curation.dedup", "infir.data.curation.decontam")


def _exit_when_gone(driver_pid: int) -> None:
    try:
        fd = os.pidfd_open(driver_pid)  # Linux >= 5.3: readable once the process has exited
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])
    else:
        while True:
            try:
                os.kill(driver_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(1.0)
    os._exit(1)


def die_with_driver(driver_pid: int) -> None:
    """End this worker when the driver dies, even by kill -9. A fork-server worker's parent is the fork
    server, which outlives the driver while any worker holds its liveness pipe (multiprocessing hands the
    pipe to each worker), so the worker watches the driver itself."""
    threading.Thread(target=_exit_when_gone, args=(driver_pid,), name="driver-watch", daemon=True).start()


class LocalExecutor:
    """``workers`` processes on this machine; 1 runs tasks in this process.

    Workers come from a fork server (``forkserver``: forked from a clean process that preloaded the curation
    modules, not from the driver, so no inherited threads, locks or CUDA state, and a worker costs a fork, not
    an interpreter start plus imports), and the pool is kept across ``map`` calls until ``close``.
    """

    def __init__(self, workers: int = 1, progress: bool = False) -> None:
        self.workers = max(1, int(workers))
        self.progress = progress
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = get_context("forkserver")
            context.set_forkserver_preload(list(PRELOAD))
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=die_with_driver,
                                             initargs=(os.getpid(),))
        return self._pool

    def prestart(self) -> None:
        """Boot the fork server and the workers now, without waiting: they come up while the driver reads
        its inputs (a second or so of wall time on the critical path otherwise)."""
        if self.workers > 1:
            pool = self._get_pool()
            for _ in range(self.workers):
                pool.submit(os.getpid)

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], desc: str) -> list[Any]:
        if not tasks:
            return []
        if self.workers == 1 or len(tasks) == 1:
            return [fn(t) for t in tqdm(tasks, desc=desc, disable=not self.progress, leave=False)]
        pool = self._get_pool()
        try:
            return list(tqdm(pool.map(fn, tasks), total=len(tasks), desc=desc, disable=not self.progress,
                             leave=False))
        except BaseException:
            self.close(cancel=True)  # a failed shard (a full disk): don't run the rest
            raise

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None
