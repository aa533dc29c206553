"""`python benchmarks/gpu_train.py` must keep working without a GPU: its tiny CPU configuration runs both sides
on the same batches and prints the ratio (timings themselves are not asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO


def test_cpu_configuration_runs_both_sides_on_the_same_batches_and_prints_the_ratio():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_train.py"), "--seq-lens", "64",
                           "--steps", "2", "--warmup", "1", "--rounds", "1", "--document-masking",
                           "--peak-flops", "1e11"],  # not measured (or cached in the repo) by a test
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # same initial weights and batches: the first step's loss agrees between the sides
    (plain, infir), = re.findall(r"step-1 loss ([\d.]+) / ([\d.]+)", proc.stdout)
    assert abs(float(plain) - float(infir)) < 1e-3
    row = re.search(r"^\s*64\s+8\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)%\s+([\d.]+)%", proc.stdout, re.M)
    assert row, proc.stdout[-3000:]
    plain_tps, infir_tps, ratio = (float(row.group(i).replace(",", "")) for i in (1, 2, 3))
    assert plain_tps > 0 and infir_tps > 0 and abs(ratio - infir_tps / plain_tps) < 0.01
    assert "reproduce: python benchmarks/gpu_train.py" in proc.stdout
