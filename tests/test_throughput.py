"""The MFU peak: one fixed figure per machine (cached measurement), env/config precedence, bad values."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch

from infir.training import throughput
from infir.training.throughput import machine_key, measure_matmul_peak, peak_flops_per_device


@pytest.fixture
def measurements(monkeypatch: pytest.MonkeyPatch) -> list[torch.dtype]:
    """Replace the matmul measurement with a counted fake on a CPU-only view of the machine."""
    calls: list[torch.dtype] = []

    def fake(dtype: torch.dtype, device: str = "cpu", budget_s: float = 2.0) -> float:
        calls.append(dtype)
        return 1e11 * len(calls)  # a different figure per call: a re-measurement shows

    monkeypatch.setattr(throughput, "measure_matmul_peak", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("INFIR_PEAK_FLOPS", raising=False)
    return calls


def _cache_files(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "peak_flops").glob("*.json"))


def test_second_run_on_the_same_machine_reuses_the_cached_peak(tmp_path: Path, measurements: list) -> None:
    first = peak_flops_per_device(None, "32-true", tmp_path)
    second = peak_flops_per_device(None, "32-true", tmp_path)
    assert len(measurements) == 1
    assert first == second
    assert first[0] == 1e11
    (cache_file,) = _cache_files(tmp_path)
    assert "measured once on this machine" in first[1] and str(cache_file) in first[1]
    record = json.loads(cache_file.read_text())
    assert record["peak_flops"] == 1e11 and record["dtype"] == "torch.float32"
    assert record["measured_at"][:10] in first[1]


def test_thread_count_and_dtype_change_the_machine_key(tmp_path: Path, measurements: list) -> None:
    threads = torch.get_num_threads()
    key_fp32, _ = machine_key(torch.float32)
    assert machine_key(torch.bfloat16)[0] != key_fp32
    try:
        torch.set_num_threads(1 if threads != 1 else 2)
        assert machine_key(torch.float32)[0] != key_fp32
        peak_flops_per_device(None, "32-true", tmp_path)
    finally:
        torch.set_num_threads(threads)
    peak_flops_per_device(None, "32-true", tmp_path)
    peak_flops_per_device(None, "bf16-mixed", tmp_path)
    assert measurements == [torch.float32, torch.float32, torch.bfloat16]
    assert len(_cache_files(tmp_path)) == 3


def test_env_var_and_configured_number_take_precedence(tmp_path: Path, measurements: list,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFIR_PEAK_FLOPS", "2.5e11")
    peak, source = peak_flops_per_device(None, "32-true", tmp_path)
    assert peak == 2.5e11 and "INFIR_PEAK_FLOPS" in source
    assert peak_flops_per_device(3e12, "32-true", tmp_path) == (3e12, "configured")
    assert peak_flops_per_device("4e12", "32-true", tmp_path) == (4e12, "configured")  # YAML reads 4e12 as text
    assert measurements == [] and _cache_files(tmp_path) == []


def test_measure_forces_a_fresh_uncached_measurement(tmp_path: Path, measurements: list) -> None:
    peak_flops_per_device(None, "32-true", tmp_path)
    a, source = peak_flops_per_device("measure", "32-true", tmp_path)
    b, _ = peak_flops_per_device("measure", "32-true", tmp_path)
    assert len(measurements) == 3 and a != b
    assert "not cached" in source
    assert json.loads(_cache_files(tmp_path)[0].read_text())["peak_flops"] == 1e11  # the cache is untouched


@pytest.mark.parametrize("bad", [-1.0, 0, "fast", True, float("nan")])
def test_bad_configured_value_names_the_key(tmp_path: Path, measurements: list, bad: object) -> None:
    with pytest.raises(ValueError, match=r"trainer\.peak_flops_per_device"):
        peak_flops_per_device(bad, "32-true", tmp_path)


@pytest.mark.parametrize("bad", ["abc", "-5", "inf", "0"])
def test_bad_env_value_names_the_variable(tmp_path: Path, measurements: list, monkeypatch: pytest.MonkeyPatch,
                                          bad: str) -> None:
    monkeypatch.setenv("INFIR_PEAK_FLOPS", bad)
    with pytest.raises(ValueError, match="INFIR_PEAK_FLOPS"):
        peak_flops_per_device(None, "32-true", tmp_path)


@pytest.mark.parametrize("damage", ["torn", "not_json", "wrong_key", "bad_peak"])
def test_torn_or_invalid_cache_file_is_measured_again_and_rewritten(tmp_path: Path, measurements: list,
                                                                     damage: str) -> None:
    peak_flops_per_device(None, "32-true", tmp_path)
    (cache_file,) = _cache_files(tmp_path)
    text = cache_file.read_text()
    record = json.loads(text)
    cache_file.write_text({"torn": text[: len(text) // 2], "not_json": "\x00\x01",
                           "wrong_key": json.dumps({**record, "key": "other"}),
                           "bad_peak": json.dumps({**record, "peak_flops": -3})}[damage])
    peak, _ = peak_flops_per_device(None, "32-true", tmp_path)
    assert len(measurements) == 2 and peak == 2e11
    assert json.loads(cache_file.read_text())["peak_flops"] == 2e11
    assert peak_flops_per_device(None, "32-true", tmp_path)[0] == 2e11 and len(measurements) == 2
    assert [p.name for p in cache_file.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_concurrent_first_runs_measure_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def slow(dtype: torch.dtype, device: str = "cpu", budget_s: float = 2.0) -> float:
        calls.append(dtype)
        time.sleep(0.3)
        return 7e10

    monkeypatch.setattr(throughput, "measure_matmul_peak", slow)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("INFIR_PEAK_FLOPS", raising=False)
    results: list[tuple[float, str]] = []
    threads = [threading.Thread(target=lambda: results.append(peak_flops_per_device(None, "32-true", tmp_path)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert [r[0] for r in results] == [7e10] * 3


def test_real_measurement_is_positive_and_bounded() -> None:
    start = time.perf_counter()
    peak = measure_matmul_peak(torch.float32, budget_s=0.5)
    assert peak > 1e8  # any CPU that runs torch does more than 0.1 GFLOP/s
    assert time.perf_counter() - start < 10
