"""Files that are either absent, the old version, or complete: written beside the target, then renamed.

Why one module: curation shards and stats, the curation manifest and training checkpoints all must survive
``kill -9`` mid-write without leaving a truncated file under the final name (a resume or a cache lookup
would trust it). Every writer stages ``.<name>.<pid>.tmp`` in the target's own directory (a rename
within one filesystem is atomic; ``$TMPDIR`` may be another filesystem, where a move is a copy) and
renames it over the target; ``durable`` writers (checkpoints) also fsync the file and the directory.
A kill leaves only a temp file whose writer pid is dead, which :func:`remove_stale_temp_files` clears
on the next run (``infir.data.cache`` build dirs, ``.tmp-<key>-<pid>``, follow the same rule).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

# Temp names of killed writers: ours (".<name>.<pid>.tmp") and infir.data.cache's build dirs (".tmp-<key>-<pid>").
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.tmp$|^\.tmp-.+-(\d+)$")


def temp_path(path: Path) -> Path:
    """Where this process stages ``path``: beside it, hidden, named by our pid (no ``*.ckpt`` glob matches it)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: Path, durable: bool = False) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through; renamed over ``path`` only when the block ends without error.

    ``durable``: fsync the bytes before the rename and the directory after it (survives a power loss).
    A failed write (a full disk) removes the temp file and raises an OSError naming ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = temp_path(path)
    try:
        with open(staged, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(staged, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            staged.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OSError(err.errno, f"cannot write: {err.strerror or err}", str(path)) from err
        raise
    if durable:
        _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = False) -> None:
    with atomic_output(path, durable) as f:
        f.write(data)


def atomic_write_text(path: Path, text: str, durable: bool = False) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temp_files(root: Path, max_depth: int | None = None) -> list[Path]:
    """Delete the temp files and build dirs under ``root`` whose writer process is gone (killed mid-write);
    those of a live process stay. ``max_depth`` limits how many folders deep it looks (None: all; 0: ``root``)."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    base_depth = len(root.parts)
    for directory, dirnames, filenames in os.walk(root):
        here = Path(directory)
        for name in [*filenames, *dirnames]:
            match = _TEMP_NAME.match(name)
            if not match or _pid_alive(int(match.group(1) or match.group(2))):
                continue
            target = here / name
            if name in dirnames:
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
            removed.append(target)
        removed_dirs = {p.name for p in removed if p.parent == here}
        too_deep = max_depth is not None and len(here.parts) - base_depth >= max_depth
        dirnames[:] = [] if too_deep else [d for d in dirnames if d not in removed_dirs]
    if removed:
        log.warning("removed %d temp file(s) that killed writers left under %s: %s", len(removed), root,
                    ", ".join(p.name for p in removed[:5]) + (" ..." if len(removed) > 5 else ""))
    return removed
