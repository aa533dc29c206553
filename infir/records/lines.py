"""JSON lines read from bytes, the one decoder every reader of ``.jsonl(.gz)`` input shares.

Bad input is reported, never raised: a line that is not UTF-8 or not JSON is passed to the
caller's ``on_bad`` and skipped, and a damaged gzip stream ends the file there (the lines before
the damage are kept, the unreadable rest is reported once). A UTF-8 BOM may open the file.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

# What a damaged gzip stream raises: truncated (EOFError), not gzip at all or bad CRC (BadGzipFile), bad deflate data.
GZIP_ERRORS: tuple[type[Exception], ...] = (EOFError, gzip.BadGzipFile, zlib.error)

# on_bad(reason, where, detail); reason is one of "invalid_utf8", "invalid_json", "corrupt_gzip".
OnBad = Callable[[str, str, str], Any]


def open_lines(path: Path) -> IO[bytes]:
    """The file as a binary stream, decompressed when its name ends in ``.gz``."""
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def json_lines(lines: Iterable[bytes], path: Path | str, on_bad: OnBad) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-blank line; undecodable lines and gzip damage go to ``on_bad``."""
    lineno = 0
    try:
        for lineno, line in enumerate(lines, start=1):
            where = f"{path}:{lineno}"
            try:
                decoded = line.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a BOM may open the file
            except UnicodeDecodeError as err:
                on_bad("invalid_utf8", where, str(err))
                continue
            if not decoded.strip():
                continue
            try:
                yield lineno, json.loads(decoded)
            except json.JSONDecodeError as err:
                on_bad("invalid_json", where, str(err))
    except GZIP_ERRORS as err:
        on_bad("corrupt_gzip", f"{path}:{lineno + 1}",
               f"compressed data unreadable from line {lineno + 1} on, earlier records kept ({err})")
