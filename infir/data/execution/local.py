"""The ``local`` executor: this process (1 worker) or a pool of spawned processes on this machine.

Workers die with the driver, even when it is killed with -9 (the kernel's parent-death signal), so a
killed run leaves no idle process holding memory; the next run resumes from the completion markers.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from tqdm.auto import tqdm

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """End this worker when the driver dies, even by kill -9 (which runs none of the driver's cleanup and
    would leave idle workers holding their memory): the kernel's parent-death signal on Linux, else a
    thread that watches the parent pid."""
    if sys.platform.startswith("linux"):
        # The signal fires when the thread that spawned us ends: the pool spawns from the driver's calling
        # thread, which outlives the pool (``with ProcessPoolExecutor`` in ``LocalExecutor.map``).
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent_pid:  # the driver died before the signal was armed
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()


class LocalExecutor:
    """``workers`` spawned processes (spawn: no inherited locks or CUDA state); 1 runs tasks in this process."""

    def __init__(self, workers: int = 1, progress: bool = False) -> None:
        self.workers = max(1, int(workers))
        self.progress = progress

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], desc: str) -> list[Any]:
        if not tasks:
            return []
        if self.workers == 1 or len(tasks) == 1:
            return [fn(t) for t in tqdm(tasks, desc=desc, disable=not self.progress, leave=False)]
        with ProcessPoolExecutor(min(self.workers, len(tasks)), mp_context=get_context("spawn"),
                                 initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            try:
                return list(tqdm(pool.map(fn, tasks), total=len(tasks), desc=desc, disable=not self.progress,
                                 leave=False))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # a failed shard (a full disk): don't run the rest
                raise

    def close(self) -> None:
        """Nothing held between calls: each ``map`` owns its pool."""
