"""Read the run record of an offline W&B run (``run-<id>.wandb``) to check group, name and tags.

The file is a 7-byte W&B header followed by LevelDB-log-framed protobuf ``Record``s in
32 KiB blocks (each fragment: crc32 (4), length (2, little endian), type (1)).
"""

from __future__ import annotations

from pathlib import Path

_BLOCK, _HEADER, _FRAG = 32768, 7, 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def iter_records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B data file"
    pos, pending = _HEADER, b""
    while pos + _FRAG <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _FRAG:  # block trailer padding
            pos += left_in_block
            continue
        length = int.from_bytes(data[pos + 4:pos + 6], "little")
        kind = data[pos + 6]
        chunk = data[pos + _FRAG:pos + _FRAG + length]
        pos += _FRAG + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (_FULL, _FIRST) else pending + chunk
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            yield record


def run_record(path: Path):
    """The ``RunRecord`` (id, group, display name, tags) of an offline run file."""
    for record in iter_records(path):
        if record.WhichOneof("record_type") == "run":
            return record.run
    raise AssertionError(f"no run record in {path}")


def history(path: Path) -> list[tuple[int, dict]]:
    """The history records of one offline run file: (``_step``, {key: value}), values JSON-decoded."""
    import json

    out = []
    for record in iter_records(path):
        if record.WhichOneof("record_type") == "history":
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                     for item in record.history.item}
            out.append((int(items["_step"]), items))
    return out


def segments(wandb_dir: Path) -> list[Path]:
    """The run files of every attempt in a run dir's ``wandb/`` folder, oldest first."""
    return sorted(wandb_dir.glob("offline-run-*/run-*.wandb"), key=lambda p: p.parent.name)


def merged_history(wandb_dir: Path) -> list[tuple[int, dict]]:
    """The history W&B assembles when the attempts are synced in order into one resumed run.

    W&B keeps a record only if its ``_step`` is above every step the run already holds
    (steps must increase; an earlier one is dropped with a warning).
    """
    merged: list[tuple[int, dict]] = []
    for path in segments(wandb_dir):
        for step, items in history(path):
            if not merged or step > merged[-1][0]:
                merged.append((step, items))
    return merged
