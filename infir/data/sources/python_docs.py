"""Prose domain: the Python documentation topics shipped in the stdlib (``pydoc_data``, PSF licence).

~460 KB of real, edited English technical prose — the offline stand-in for web
and encyclopedic text. Long topics are cut at paragraph boundaries into
documents of about ``chunk_chars`` characters.
"""

from __future__ import annotations

from collections.abc import Iterator

from infir.data.documents import TRAIN, Document
from infir.data.splits import assign_split


def chunk_paragraphs(text: str, chunk_chars: int) -> list[str]:
    """Greedy paragraph packing: no paragraph is split, chunks stay near ``chunk_chars``."""
    chunks, current = [], []
    size = 0
    for para in text.split("\n\n"):
        # never cut after a paragraph that introduces the next one ("For example:")
        if current and size + len(para) > chunk_chars and not current[-1].rstrip().endswith(":"):
            chunks.append("\n\n".join(current))
            current, size = [], 0
        current.append(para)
        size += len(para) + 2
    if current:
        chunks.append("\n\n".join(current))
    return [c.strip() for c in chunks if c.strip()]


class PythonDocsSource:
    name = "python_docs"
    domain = "prose"

    def __init__(self, chunk_chars: int = 3000, validation_fraction: float = 0.1) -> None:
        self.chunk_chars = chunk_chars
        self.validation_fraction = validation_fraction

    def fingerprint(self) -> str:
        import sys

        return f"pydoc-{sys.version_info[:3]}-{self.chunk_chars}-{self.validation_fraction}"

    def documents(self) -> Iterator[Document]:
        from pydoc_data.topics import topics

        for topic in sorted(topics):
            for i, chunk in enumerate(chunk_paragraphs(topics[topic], self.chunk_chars)):
                key = f"{topic}/{i}"
                split = assign_split(key, "pydoc", {"validation": self.validation_fraction}, TRAIN)
                yield Document(id=f"python_docs/{key}", text=chunk, source=self.name, domain=self.domain,
                               metadata={"split": split, "topic": topic})
