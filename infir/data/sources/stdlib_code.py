"""Code domain: the Python standard library's own sources (PSF licence).

Every Python install carries ~700 real, reviewed, idiomatic modules; they are
the offline stand-in for The Stack's Python subset.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from infir.data.documents import TRAIN, Document
from infir.data.splits import assign_split

log = logging.getLogger(__name__)

# Test suites and vendored/generated trees are not representative source code.
_EXCLUDED_PARTS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
                             "lib2to3", "ensurepip", "turtledemo", "pydoc_data", "encodings"})


class StdlibCodeSource:
    """Yields one document per ``.py`` file of the running interpreter's stdlib."""

    name = "stdlib"
    domain = "code"

    def __init__(self, validation_fraction: float = 0.05, max_files: int | None = None,
                 max_bytes_per_file: int = 64_000, root: str | None = None) -> None:
        self.validation_fraction = validation_fraction
        self.max_files = max_files
        self.max_bytes_per_file = max_bytes_per_file
        self.root = Path(root or sysconfig.get_paths()["stdlib"])
        if not self.root.is_dir():
            raise FileNotFoundError(f"data_mix.sources.stdlib.root: no such directory: {self.root}")

    def _files(self) -> list[Path]:
        files = [p for p in sorted(self.root.rglob("*.py"))
                 if not _EXCLUDED_PARTS.intersection(p.relative_to(self.root).parts)]
        return files[: self.max_files] if self.max_files else files

    def fingerprint(self) -> str:
        """Identity of what ``documents`` yields: interpreter version, file list and options."""
        h = hashlib.sha256(f"{sys.version}|{self.validation_fraction}|{self.max_files}|"
                           f"{self.max_bytes_per_file}".encode())
        for p in self._files():
            h.update(f"{p.relative_to(self.root)}:{p.stat().st_size}".encode())
        return h.hexdigest()[:16]

    def documents(self) -> Iterator[Document]:
        skipped = 0
        for path in self._files():
            rel = str(path.relative_to(self.root))
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError) as err:
                skipped += 1
                log.warning("stdlib source: skipped %s (%s)", rel, err)
                continue
            if not text.strip() or len(text.encode()) > self.max_bytes_per_file:
                skipped += 1
                continue
            split = assign_split(rel, "stdlib", {"validation": self.validation_fraction}, TRAIN)
            yield Document(id=f"stdlib/{rel}", text=text, source=self.name, domain=self.domain,
                           metadata={"split": split, "path": rel, "language": "python"})
        if skipped:
            log.info("stdlib source: skipped %d files (empty, oversize or undecodable)", skipped)
