"""Tokens/s and model FLOPs utilisation (MFU) of the training loop.

MFU = achieved model FLOP/s / (peak FLOP/s per device x devices). The peak is
configurable per device (``trainer.peak_flops_per_device``); when unset, known
GPUs use their dense bf16 datasheet figure and CPUs a measured dense-matmul
peak in the training precision (a practical ceiling, said as such in the logs).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning as L
import torch

log = logging.getLogger(__name__)

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA datasheets.
GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "A800": 312e12,
                 "L40S": 362e12, "A10G": 70e12, "4090": 165e12}


def measured_cpu_matmul_peak(dtype: torch.dtype, size: int = 1024, repeats: int = 8) -> float:
    """FLOP/s of a square matmul on this CPU with the current thread count (best of ``repeats``)."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def peak_flops_per_device(configured: float | None, precision: str) -> tuple[float, str]:
    """(peak FLOP/s, where the figure came from)."""
    if configured:
        return float(configured), "configured"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        for key, peak in GPU_PEAK_BF16.items():
            if key in name:
                return peak, f"datasheet bf16 dense ({name})"
        return 0.0, f"unknown GPU {name}: set trainer.peak_flops_per_device"
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float32
    return measured_cpu_matmul_peak(dtype), f"measured CPU {dtype} matmul peak"


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
