"""Benchmark/conversation row files as users have them: a BOM, damaged gzip, undecodable lines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from infir.records import read_rows, validate_rows

ROWS = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(400)]


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_a_utf8_bom_does_not_spoil_the_first_row(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_bytes(b"\xef\xbb\xbf" + _jsonl(ROWS[:2]))
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(b"\xef\xbb\xbf" + _jsonl(ROWS[:2])))
    (tmp_path / "b.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(ROWS[:2]).encode())
    for name in ("b.jsonl", "b.jsonl.gz", "b.json"):
        assert read_rows(tmp_path / name) == ROWS[:2], name


def test_damaged_gzip_keeps_the_rows_before_the_damage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    full = gzip.compress(_jsonl(ROWS))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(full[: len(full) // 2])  # truncated mid-stream, as an interrupted download leaves it
    rows = read_rows(path)
    kept, invalid = rows[:-1], rows[-1]
    assert 0 < len(kept) < len(ROWS) and kept == ROWS[: len(kept)]
    assert invalid["__invalid__"].startswith(f"corrupt_gzip: {path}:{len(kept) + 1}")
    loaded = validate_rows(rows, ["question", "answer"], "eval.tasks.t")
    assert loaded.records == kept and loaded.skipped == {"corrupt_gzip": 1}
    assert str(path) in caplog.text

    not_gzip = tmp_path / "plain.jsonl.gz"
    not_gzip.write_bytes(_jsonl(ROWS[:3]))  # only the name says gzip: one invalid row, no crash
    [only] = read_rows(not_gzip)
    assert only["__invalid__"].startswith("corrupt_gzip:")
    with pytest.raises(ValueError, match="no usable record"):
        validate_rows([only], ["question"], "eval.tasks.t")


def test_undecodable_and_broken_lines_are_counted_by_reason(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(_jsonl(ROWS[:1]) + b'{"question": "\xff\xfe"}\n' + b"{broken\n\n" + _jsonl(ROWS[1:2]))
    rows = read_rows(path)
    assert rows[0] == ROWS[0] and rows[-1] == ROWS[1]
    assert f"{path}:2" in rows[1]["__invalid__"] and f"{path}:3" in rows[2]["__invalid__"]
    loaded = validate_rows(rows, ["question"], "eval.tasks.t")
    assert loaded.records == ROWS[:2] and loaded.skipped == {"invalid_utf8": 1, "invalid_json": 1}
