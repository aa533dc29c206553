"""Shared test setup: offline everything, small shared caches, subprocess runner for train.py."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")

import infir  # noqa: E402,F401  (torchvision op guard before anything imports torchvision)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact cache for the session: tokenizers and token shards are built once."""
    return tmp_path_factory.mktemp("infir-cache")


def run_train(args: list[str], out_dir: Path, cache: Path, check: bool = True,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``train.py`` in a subprocess with outputs and cache redirected."""
    cmd = [sys.executable, str(REPO / "train.py"), *args, f"paths.output_dir={out_dir}",
           f"paths.cache_dir={cache}"]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=full_env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def read_metrics(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(newline="") as f:
        return list(csv.DictReader(f))


def last_value(rows: list[dict[str, str]], key: str) -> tuple[int, float]:
    """(step, value) of the last row that has ``key``."""
    for row in reversed(rows):
        if row.get(key):
            return int(row["step"]), float(row[key])
    raise KeyError(key)
