"""The runner's shard files: Parquet between passes, gzip JSON lines for what leaves the runner.

Intermediate shards (the read stage's and every pass's but the last) are only ever read back by the next
pass, so they use the faster format: Parquet with snappy, columns ``id text source domain metadata`` (metadata
as a JSON string, so any metadata round-trips exactly as through JSON lines). Measured on 2,000 1-4 KB
documents, per document: 14 us to write and 13 us to read, against 59 and 25 us for gzip JSON lines at level
3 (zstd Parquet compresses ~7 % smaller than gzip but writes 3x slower). The final output (and excluded
documents) stay ``.jsonl.gz``: the interchange format every tool reads, and what ``train.py`` and users open.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from infir.atomic_files import atomic_write_bytes
from infir.data.doc_io import read_jsonl_gz, write_jsonl_gz
from infir.data.documents import Document

PARQUET = ".parquet"
JSONL_GZ = ".jsonl.gz"
SUFFIXES = (JSONL_GZ, PARQUET)
_COLUMNS = ("id", "text", "source", "domain", "metadata")


def shard_stem(path: Path) -> str:
    """``shard_00000`` of ``shard_00000.parquet`` / ``shard_00000.jsonl.gz``."""
    for suffix in SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    raise ValueError(f"not a shard file name: {path}")


def write_shard(docs: list[Document], path: Path) -> None:
    """Atomically, in the format the name's suffix says."""
    if not path.name.endswith(PARQUET):
        write_jsonl_gz(docs, path)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [d.id for d in docs], "text": [d.text for d in docs],
                      "source": [d.source for d in docs], "domain": [d.domain for d in docs],
                      "metadata": [json.dumps(d.metadata, ensure_ascii=False) for d in docs]},
                     schema=pa.schema([(c, pa.string()) for c in _COLUMNS]))
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="snappy")
    atomic_write_bytes(path, buffer.getvalue())


def read_shard(path: Path) -> list[Document]:
    if not path.name.endswith(PARQUET):
        return read_jsonl_gz(path)
    import pyarrow.parquet as pq

    cols = pq.read_table(path).to_pydict()
    return [Document(i, text, source, domain, json.loads(meta)) for i, text, source, domain, meta
            in zip(cols["id"], cols["text"], cols["source"], cols["domain"], cols["metadata"])]
