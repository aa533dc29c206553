"""Tokens/s and model FLOPs utilisation (MFU) of the training loop.

MFU = achieved model FLOP/s / (peak FLOP/s per device x devices). MFU of two runs is only comparable
when both divide by the same peak, so the peak is a fixed figure per machine, never re-measured
behind the user's back. In order of precedence:

1. ``trainer.peak_flops_per_device`` set to a number (``"measure"`` forces a fresh, uncached measurement);
2. the ``INFIR_PEAK_FLOPS`` environment variable (one figure per machine, e.g. in a shell profile);
3. on a known GPU, its dense bf16 datasheet figure;
4. on CPU, a dense-matmul peak in the training precision measured once per machine and cached as JSON
   under ``<cache_dir>/peak_flops/`` (keyed by CPU model, cores, torch threads, dtype and torch
   version), so later runs on the same machine reuse it. A practical ceiling, not a datasheet figure.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import logging
import math
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch

from infir.atomic_files import atomic_write_text

log = logging.getLogger(__name__)

CONFIG_KEY = "trainer.peak_flops_per_device"
ENV_VAR = "INFIR_PEAK_FLOPS"
MEASURE = "measure"

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA datasheets.
GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "A800": 312e12,
                 "L40S": 362e12, "A10G": 70e12, "4090": 165e12}

# The one-time measurement (measure_matmul_peak): square matmuls from _MIN_SIZE, doubled up to _MAX_SIZE
# while one product is predicted under _ROUND_S, then the best of _MIN_ROUNDS.._MAX_ROUNDS rounds within
# _BUDGET_S seconds. Small products (256) are dominated by thread start-up on a busy machine.
_MIN_SIZE, _MAX_SIZE = 512, 2048
_ROUND_S, _BUDGET_S, _MIN_ROUNDS, _MAX_ROUNDS = 0.3, 2.0, 3, 12
_CACHE_FORMAT = 1


def _positive_flops(value: Any) -> float | None:
    """``value`` as a finite positive float, or None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _configured_peak(configured: float | str | None) -> float | str | None:
    """The setting as a number, ``"measure"`` or None (unset); ValueError naming the key otherwise."""
    if configured is None:
        return None
    if isinstance(configured, str) and configured.strip().lower() == MEASURE:
        return MEASURE
    number = _positive_flops(configured)
    if number is None:
        raise ValueError(f"{CONFIG_KEY}={configured!r}: expected a positive number of FLOP/s per device "
                         f"(e.g. 1.2e11), null (datasheet on known GPUs, else measured once per machine) "
                         f"or '{MEASURE}' (a fresh measurement every run)")
    return number


def _env_peak() -> float | None:
    """``$INFIR_PEAK_FLOPS`` as FLOP/s, None when unset or empty; ValueError naming the variable when bad."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return None
    number = _positive_flops(raw)
    if number is None:
        raise ValueError(f"{ENV_VAR}={raw!r}: expected a positive number of FLOP/s per device (e.g. 1.2e11); "
                         f"unset it to use {CONFIG_KEY} or the cached measurement")
    return number


def _timed_matmul(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    torch.mm(a, b)
    if a.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure_matmul_peak(dtype: torch.dtype, device: str = "cpu", budget_s: float = _BUDGET_S) -> float:
    """Dense-matmul FLOP/s on ``device`` with the current thread count, robust to a shared machine.

    Starts at 512 and doubles (at most 2048 on CPU, 8192 on GPU) while the next product is predicted
    to stay under a round's share of ``budget_s``: big products use the cores best, and a slow dtype
    path (bf16 without bf16 instructions: ~1 GFLOP/s) still finishes in about ``budget_s``. The best
    of the rounds counts, as the least disturbed by other processes.
    """
    max_size = _MAX_SIZE if device == "cpu" else 4 * _MAX_SIZE
    started = time.perf_counter()
    size = _MIN_SIZE
    while True:
        a = torch.randn(size, size, dtype=dtype, device=device)
        b = torch.randn(size, size, dtype=dtype, device=device)
        best = min(_timed_matmul(a, b), _timed_matmul(a, b))  # the first includes allocation, kernel choice
        if size >= max_size or 8 * best > _ROUND_S or time.perf_counter() - started + 16 * best > budget_s / 2:
            break
        size *= 2
    rounds = 0
    while rounds < _MAX_ROUNDS and (rounds < _MIN_ROUNDS or time.perf_counter() - started + best < budget_s):
        best = min(best, _timed_matmul(a, b))
        rounds += 1
    return 2 * size**3 / best


def _training_dtype(precision: str) -> torch.dtype:
    return torch.bfloat16 if precision.startswith("bf16") else torch.float32


def cpu_model_name() -> str:
    """The CPU's model name from /proc/cpuinfo (``model name``, or ``Hardware`` on some ARM boards)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            field, _, value = line.partition(":")
            if field.strip().lower() in ("model name", "hardware", "cpu model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def machine_key(dtype: torch.dtype) -> tuple[str, dict[str, Any]]:
    """(cache key, the fields hashed): what makes a CPU matmul peak this machine's and this setting's."""
    fields = {"cpu": cpu_model_name(), "logical_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "dtype": str(dtype), "torch": torch.__version__}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]
    return digest, fields


def _read_cached_peak(path: Path, key: str, warn: bool = True) -> dict[str, Any] | None:
    """The cache record at ``path`` when it is complete and for ``key``; None when absent, torn or invalid."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        record = None
    if (isinstance(record, dict) and record.get("key") == key and _positive_flops(record.get("peak_flops"))
            and isinstance(record.get("measured_at"), str)):
        return record
    if warn:
        log.warning("peak FLOP/s cache %s is unreadable or invalid (torn by a kill?); measuring again", path)
    return None


def _load_average() -> float | None:
    """The 1-minute load average (None where the OS has none): kept with the measurement to judge it later."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One measurer per key at a time: concurrent first runs (a sweep, DDP ranks) would slow each other's
    measurement down and cache a figure that is too low; the others wait and read its result."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_cpu_peak(dtype: torch.dtype, cache_dir: str | Path) -> tuple[float, str]:
    """This machine's CPU matmul peak for ``dtype``: read from ``<cache_dir>/peak_flops/<key>.json``,
    or measured once and written there atomically (a torn or invalid file is measured again)."""
    key, fields = machine_key(dtype)
    path = Path(cache_dir) / "peak_flops" / f"{key}.json"
    record = _read_cached_peak(path, key)
    if record is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(path.with_name(f"{key}.lock")):
            record = _read_cached_peak(path, key, warn=False)  # another run may have measured meanwhile
            if record is None:
                load = _load_average()
                peak = measure_matmul_peak(dtype)
                record = {"format": _CACHE_FORMAT, "key": key, "peak_flops": peak, **fields,
                          "load_average_1m": load,
                          "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
                atomic_write_text(path, json.dumps(record, indent=2) + "\n")
                log.info("measured this machine's CPU %s matmul peak once: %.3g FLOP/s, cached in %s "
                         "(later runs reuse it, so their perf/mfu compare)", dtype, peak, path)
                if load is not None and load > (os.cpu_count() or 1) / 2:
                    log.warning("the machine was busy during that measurement (load %.1f on %s cores): the cached "
                                "peak may be low; delete %s when it is idle to measure again, or set %s",
                                load, os.cpu_count(), path, ENV_VAR)
    return float(record["peak_flops"]), (f"CPU {dtype} matmul peak, measured once on this machine "
                                         f"({path}, {record['measured_at'][:10]})")


def peak_flops_per_device(configured: float | str | None, precision: str,
                          cache_dir: str | Path | None = None) -> tuple[float, str]:
    """(peak FLOP/s per device, where the figure came from) for MFU; see the module docstring for the order.

    ``configured`` is ``trainer.peak_flops_per_device``; ``cache_dir`` holds the per-machine CPU
    measurement (None: measured at run start, not cached). Bad values raise ValueError naming
    ``trainer.peak_flops_per_device`` or ``INFIR_PEAK_FLOPS``.
    """
    setting = _configured_peak(configured)
    if isinstance(setting, float):
        return setting, "configured"
    dtype = _training_dtype(precision)
    if setting == MEASURE:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return measure_matmul_peak(dtype, device), f"{device.upper()} {dtype} matmul peak, measured at run start " \
                                                    f"({CONFIG_KEY}={MEASURE}: not cached)"
    env_peak = _env_peak()
    if env_peak is not None:
        return env_peak, f"{ENV_VAR} environment variable"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        for key, peak in GPU_PEAK_BF16.items():
            if key in name:
                return peak, f"datasheet bf16 dense ({name})"
        return 0.0, f"unknown GPU {name}: set {CONFIG_KEY} or {ENV_VAR}"
    if cache_dir is None:
        return measure_matmul_peak(dtype), f"CPU {dtype} matmul peak, measured at run start (no cache_dir: not cached)"
    try:
        return cached_cpu_peak(dtype, cache_dir)
    except OSError as error:  # a read-only or full cache dir must not stop training
        log.warning("cannot cache the CPU matmul peak under %s (%s); measuring it for this run only", cache_dir, error)
        return measure_matmul_peak(dtype), f"CPU {dtype} matmul peak, measured at run start (cache not writable)"


class ThroughputMonitor(L.Callback):
    """Logs ``perf/tokens_per_s`` and ``perf/mfu`` per optimizer step (first step excluded: warm-up)."""

    def __init__(self, tokens_per_step: int, flops_per_token: float, peak_flops: float, world_size: int,
                 log_every_n_steps: int = 1) -> None:
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.peak_total = peak_flops * world_size
        self.log_every = log_every_n_steps
        self._last_step = -1
        self._last_time = 0.0
        self._window_tokens = 0
        self._window_start = 0.0
        self.last_tokens_per_s = 0.0
        self._pause: float | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step:  # gradient accumulation: not an optimizer step yet
            return
        now = time.perf_counter()
        if self._last_step < 0:  # first step: start the clock after it (compilation, allocation)
            self._last_step, self._window_start, self._window_tokens = step, now, 0
            return
        self._window_tokens += (step - self._last_step) * self.tokens_per_step
        self._last_step = step
        if step % self.log_every:
            return
        elapsed = now - self._window_start
        tokens_per_s = self._window_tokens / elapsed
        self.last_tokens_per_s = tokens_per_s
        metrics = {"perf/tokens_per_s": tokens_per_s}
        if self.peak_total > 0:
            metrics["perf/mfu"] = tokens_per_s * self.flops_per_token / self.peak_total
        pl_module.log_dict(metrics, on_step=True)
        self._window_start, self._window_tokens = now, 0

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pause = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pause is not None:  # validation time is not training time
            self._window_start += time.perf_counter() - self._pause
            self._pause = None
