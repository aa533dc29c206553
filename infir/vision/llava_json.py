"""LLaVA-style records: ``{"id", "image": path | [paths] | absent, "conversations": [{"from", "value"}]}``.

The format of LLaVA-1.5's ``llava_v1_5_mix665k.json`` (and ShareGPT4V, nanoVLM's cauldron exports when
converted): image paths are relative to an ``image_root``; ``<image>`` in a human turn marks where each
image goes. As LLaVA's loader does, a record with one image and no ``<image>`` gets it prepended to the
first human turn. ``messages`` records (``{"role", "content"}``) are read too, and a record without an
image is a text-only conversation (mixed into instruction tuning; it never runs the vision tower).
Unusable records are counted by reason and logged, never raised: a missing image file, a placeholder
count that differs from the images, a conversation the text SFT reader rejects.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infir.data.sft import normalise_conversation
from infir.records import read_rows

log = logging.getLogger(__name__)

IMAGE_PLACEHOLDER = "<image>"
_SAMPLES_LOGGED = 3


@dataclass(frozen=True)
class VLRecord:
    """One conversation with its images (absolute paths, in placeholder order)."""

    id: str
    messages: list[dict[str, str]]
    images: tuple[Path, ...]
    source: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class LoadedVLRecords:
    records: list[VLRecord]
    skipped: dict[str, int] = field(default_factory=dict)


def _image_paths(row: Mapping[str, Any], root: Path) -> list[Path]:
    value = row.get("image", row.get("images"))
    if value is None:
        return []
    paths = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(p, str) and p for p in paths):
        raise ValueError(f"bad image field: {value!r} (a path or a list of paths)")
    return [p if p.is_absolute() else root / p for p in map(Path, paths)]


def parse_record(row: Mapping[str, Any], root: Path, source: str, index: int) -> VLRecord:
    """One LLaVA/messages row -> :class:`VLRecord`; ``ValueError("<reason>: <detail>")`` if unusable."""
    images = _image_paths(row, root)
    messages = normalise_conversation(row)
    placed = sum(m["content"].count(IMAGE_PLACEHOLDER) for m in messages)
    if images and placed == 0 and len(images) == 1:  # LLaVA: the image goes before the first human turn
        first_user = next(i for i, m in enumerate(messages) if m["role"] == "user")
        messages[first_user] = {**messages[first_user],
                                "content": f"{IMAGE_PLACEHOLDER}\n{messages[first_user]['content']}"}
        placed = 1
    if any(IMAGE_PLACEHOLDER in m["content"] for m in messages if m["role"] == "assistant"):
        raise ValueError("image in assistant turn: <image> may only appear in user turns")
    if placed != len(images):
        raise ValueError(f"image count mismatch: {placed} {IMAGE_PLACEHOLDER} placeholders, {len(images)} images")
    missing = [p for p in images if not p.is_file()]
    if missing:
        raise ValueError(f"missing image: {missing[0]}")
    meta = row.get("meta") if isinstance(row.get("meta"), Mapping) else {}
    return VLRecord(id=str(row.get("id", f"{source}:{index}")), messages=messages, images=tuple(images),
                    source=str(row.get("source") or source), meta=dict(meta))


def read_llava_records(path: str | Path, image_root: str | Path | None = None, source: str | None = None,
                       rows: Sequence[Mapping[str, Any]] | None = None) -> LoadedVLRecords:
    """All usable records of a LLaVA JSON/JSONL file (images relative to ``image_root``, default its folder)."""
    path = Path(path).expanduser()
    root = Path(image_root).expanduser() if image_root else path.parent
    name = source or path.stem
    result = LoadedVLRecords([])
    for index, row in enumerate(read_rows(path) if rows is None else rows):
        try:
            if not isinstance(row, Mapping):
                raise ValueError("not a mapping: each record must be a JSON object")
            if "__invalid__" in row:
                raise ValueError(f"invalid line: {row['__invalid__']}")
            result.records.append(parse_record(row, root, name, index))
        except ValueError as exc:
            reason = str(exc).split(":")[0]
            result.skipped[reason] = result.skipped.get(reason, 0) + 1
            if sum(result.skipped.values()) <= _SAMPLES_LOGGED:
                log.warning("%s: skipping record %d: %s", path, index, exc)
    if result.skipped:
        log.warning("%s: kept %d records, skipped %s", path, len(result.records), result.skipped)
    if not result.records:
        raise ValueError(f"{path}: no usable vision-language record (skipped {result.skipped})")
    return result
