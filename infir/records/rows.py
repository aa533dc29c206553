"""Benchmark records in their public formats, read from jsonl, json, parquet or HF ``datasets`` dirs.

Each task names the fields it needs; a record missing one is skipped, counted and logged (the
first few are shown), and a source with no usable record fails naming the path and the field.
A JSON line that cannot be read (not UTF-8, not JSON, or lost to a damaged gzip stream) comes back
as one invalid row, ``{"__invalid__": "<reason>: <file>:<line>: <detail>"}``, which
:func:`validate_rows` counts under ``<reason>``; the rows before gzip damage are kept.
Used by evaluation (benchmarks) and by SFT data (conversation files), so it sits below both.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infir.records.lines import json_lines, open_lines

log = logging.getLogger(__name__)
_SAMPLES_LOGGED = 3


@dataclass
class LoadedRecords:
    """Valid records plus what was skipped and why (reported in the results JSON)."""

    records: list[dict[str, Any]]
    skipped: dict[str, int] = field(default_factory=dict)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def invalid(reason: str, where: str, detail: str) -> None:
        rows.append({"__invalid__": f"{reason}: {where}: {detail}"})

    with open_lines(path) as raw:
        for _, value in json_lines(raw, path, invalid):  # invalid rows land in file order
            rows.append(value)
    return rows


def _read_parquet(paths: Sequence[Path]) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for path in paths:
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def _read_dataset_dir(path: Path, split: str | None) -> list[dict[str, Any]]:
    """A ``save_to_disk`` directory (Dataset or DatasetDict), or a folder of parquet/jsonl files."""
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        from datasets import DatasetDict, load_from_disk

        data = load_from_disk(str(path))
        if isinstance(data, DatasetDict):
            if split is None or split not in data:
                raise ValueError(f"{path}: choose a split with `split=` (available: {sorted(data)}), got {split!r}")
            data = data[split]
        return [dict(row) for row in data]
    files = sorted(p for p in path.rglob("*") if p.suffix in (".parquet", ".jsonl") or p.name.endswith(".jsonl.gz"))
    if split is not None:  # HF layouts: <split>/..., <split>-00000-of-00001.parquet, <split>.jsonl
        files = [p for p in files if split in p.relative_to(path).parts[:-1]
                 or p.name.startswith((f"{split}-", f"{split}.", f"{split}_"))]
    if not files:
        raise FileNotFoundError(f"{path}: no parquet/jsonl files{f' for split {split!r}' if split else ''}")
    parquet = [p for p in files if p.suffix == ".parquet"]
    rows = _read_parquet(parquet)
    for p in files:
        if p not in parquet:
            rows.extend(_read_jsonl(p))
    return rows


def read_rows(path: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """All rows of a benchmark file or directory, as dicts; fails naming the path if unreadable."""
    path = Path(path).expanduser()
    if path.is_dir():
        return _read_dataset_dir(path, split)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark source not found: {path}")
    if path.suffix == ".parquet":
        return _read_parquet([path])
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # a BOM may open it
        if isinstance(data, Mapping):
            if split is None or split not in data:
                raise ValueError(f"{path}: a JSON object of splits; choose `split=` from {sorted(data)}")
            data = data[split]
        return list(data)
    if path.suffix == ".jsonl" or path.name.endswith(".jsonl.gz"):
        return _read_jsonl(path)
    raise ValueError(f"{path}: unsupported benchmark format (use .jsonl, .jsonl.gz, .json, .parquet or a directory)")


def validate_rows(rows: Iterable[Mapping[str, Any]], required: Sequence[str], source: str,
                  normalise: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> LoadedRecords:
    """Keep rows that have every ``required`` field (after ``normalise``); count and log the rest."""
    kept: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    for index, row in enumerate(rows):
        reason = row.get("__invalid__") if isinstance(row, Mapping) else "not a mapping"
        record: dict[str, Any] = {}
        if reason is None:
            missing = [key for key in required if row.get(key) is None]
            if missing:
                reason = f"missing field {missing[0]!r}"
            else:
                try:
                    record = normalise(dict(row)) if normalise else dict(row)
                except (ValueError, TypeError, KeyError) as exc:
                    reason = f"bad record: {exc}"
        if reason is not None:
            key = reason if reason.startswith("missing field") else reason.split(":")[0]
            skipped[key] = skipped.get(key, 0) + 1
            if sum(skipped.values()) <= _SAMPLES_LOGGED:
                log.warning("%s: skipping record %d: %s", source, index, reason)
            continue
        kept.append(record)
    if not kept:
        raise ValueError(f"{source}: no usable record (needs fields {list(required)}; skipped {skipped})")
    if skipped:
        log.warning("%s: skipped %d malformed record(s): %s", source, sum(skipped.values()), skipped)
    return LoadedRecords(kept, skipped)
