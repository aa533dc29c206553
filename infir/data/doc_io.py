"""Reading and writing documents: jsonl(.gz), parquet, HF ``datasets`` dirs, folders of files.

Bad records never crash a pipeline and never vanish: each is counted under
``rejected_<reason>`` (invalid_json, invalid_utf8, missing_text, empty_text,
oversize, not_an_object) and the first few of each reason are logged with
where they came from.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infir.data.documents import Document

log = logging.getLogger(__name__)

CODE_EXTENSIONS = {".py": "python", ".js": "javascript", ".ts": "typescript", ".java": "java", ".c": "c",
                   ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".go": "go", ".rs": "rust",
                   ".rb": "ruby", ".php": "php", ".cs": "csharp", ".kt": "kotlin", ".swift": "swift",
                   ".scala": "scala", ".sh": "shell", ".sql": "sql", ".r": "r", ".jl": "julia", ".lua": "lua"}


@dataclass
class Rejections:
    """Counts of unusable input records by reason, with a few logged samples of each."""

    counts: Counter = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    max_samples: int = 3

    def add(self, reason: str, where: str, detail: str = "") -> None:
        key = f"rejected_{reason}"
        self.counts[key] += 1
        kept = self.samples.setdefault(key, [])
        if len(kept) < self.max_samples:
            kept.append(f"{where}: {detail[:200]}")
            log.warning("%s at %s %s", key, where, detail[:200])

    def merge(self, other: Rejections) -> None:
        self.counts.update(other.counts)
        for key, items in other.samples.items():
            mine = self.samples.setdefault(key, [])
            mine.extend(items[: max(0, self.max_samples - len(mine))])

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class InputSpec:
    """One configured input: where, in which format, which fields, and default provenance."""

    path: str
    format: str = "auto"            # auto | jsonl | parquet | hf_dataset | files
    text_field: str = "text"
    id_field: str | None = "id"
    source: str | None = None
    domain: str = "web"
    glob: str = "**/*"              # for format=files
    max_bytes: int = 1_000_000      # larger texts are rejected as oversize

    def resolved_format(self) -> str:
        if self.format != "auto":
            return self.format
        p = Path(self.path)
        if p.is_dir():
            return "hf_dataset" if (p / "dataset_info.json").exists() or (p / "state.json").exists() else "files"
        if p.name.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")):
            return "jsonl"
        if p.suffix == ".parquet":
            return "parquet"
        raise ValueError(f"inputs.path={self.path}: cannot tell the format; set format to jsonl, parquet, "
                         "hf_dataset or files")


def _record_to_document(record: Any, spec: InputSpec, where: str, index: int,
                        rejections: Rejections) -> Document | None:
    if not isinstance(record, dict):
        rejections.add("not_an_object", where, repr(record)[:80])
        return None
    text = record.get(spec.text_field)
    if text is None:
        rejections.add("missing_text", where, f"no field {spec.text_field!r}")
        return None
    if not isinstance(text, str):
        rejections.add("missing_text", where, f"field {spec.text_field!r} is {type(text).__name__}")
        return None
    if not text.strip():
        rejections.add("empty_text", where)
        return None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as err:  # lone surrogates from JSON \ud800-style escapes
        rejections.add("invalid_utf8", where, str(err))
        return None
    if size > spec.max_bytes:
        rejections.add("oversize", where, f"{size} bytes > {spec.max_bytes}")
        return None
    raw_id = record.get(spec.id_field) if spec.id_field else None
    doc_id = str(raw_id) if raw_id not in (None, "") else f"{Path(spec.path).name}:{index}"
    if isinstance(record.get("metadata"), dict):  # our own shard format
        meta = dict(record["metadata"])
    else:
        meta = {k: v for k, v in record.items() if k not in (spec.text_field, spec.id_field, "source", "domain")}
    return Document(id=doc_id, text=text, source=str(record.get("source") or spec.source or Path(spec.path).stem),
                    domain=str(record.get("domain") or spec.domain), metadata=meta)


def _read_jsonl(path: Path, spec: InputSpec, rejections: Rejections) -> Iterator[Document]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as raw:
        for lineno, line in enumerate(raw, start=1):
            where = f"{path}:{lineno}"
            if not line.strip():
                continue
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError as err:
                rejections.add("invalid_utf8", where, str(err))
                continue
            try:
                record = json.loads(decoded)
            except json.JSONDecodeError as err:
                rejections.add("invalid_json", where, str(err))
                continue
            doc = _record_to_document(record, spec, where, lineno, rejections)
            if doc is not None:
                yield doc


def _read_parquet(path: Path, spec: InputSpec, rejections: Rejections) -> Iterator[Document]:
    import pyarrow.parquet as pq

    index = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            index += 1
            doc = _record_to_document(record, spec, f"{path}#{index}", index, rejections)
            if doc is not None:
                yield doc


def _read_hf_dataset(path: Path, spec: InputSpec, rejections: Rejections) -> Iterator[Document]:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    splits = loaded.values() if isinstance(loaded, datasets.DatasetDict) else [loaded]
    index = 0
    for split in splits:
        for record in split:
            index += 1
            doc = _record_to_document(record, spec, f"{path}#{index}", index, rejections)
            if doc is not None:
                yield doc


def _read_files(root: Path, spec: InputSpec, rejections: Rejections) -> Iterator[Document]:
    for index, path in enumerate(sorted(p for p in root.glob(spec.glob) if p.is_file()), start=1):
        rel = str(path.relative_to(root))
        try:
            data = path.read_bytes()
        except OSError as err:
            rejections.add("unreadable", rel, str(err))
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            rejections.add("invalid_utf8", rel, str(err))
            continue
        language = CODE_EXTENSIONS.get(path.suffix.lower())
        record = {"id": f"{root.name}/{rel}", "text": text, "path": rel,
                  "domain": "code" if language else spec.domain}
        if language:
            record["language"] = language
        doc = _record_to_document(record, InputSpec(**{**spec.__dict__, "text_field": "text", "id_field": "id"}),
                                  rel, index, rejections)
        if doc is not None:
            yield doc


_READERS = {"jsonl": _read_jsonl, "parquet": _read_parquet, "hf_dataset": _read_hf_dataset, "files": _read_files}


def read_documents(spec: InputSpec, rejections: Rejections) -> Iterator[Document]:
    """Documents of one input; unusable records go to ``rejections``. Fails fast on a bad path."""
    path = Path(spec.path)
    if not path.exists():
        raise FileNotFoundError(f"inputs.path: no such file or directory: {path}")
    fmt = spec.resolved_format()
    if fmt not in _READERS:
        raise ValueError(f"inputs.format: unknown format {fmt!r} (jsonl, parquet, hf_dataset, files)")
    return _READERS[fmt](path, spec, rejections)


def document_to_record(doc: Document) -> dict[str, Any]:
    return {"id": doc.id, "text": doc.text, "source": doc.source, "domain": doc.domain, "metadata": doc.metadata}


def record_to_document(record: dict[str, Any]) -> Document:
    return Document(record["id"], record["text"], record["source"], record["domain"], record.get("metadata") or {})


def write_jsonl_gz(docs: list[Document], path: Path) -> None:
    """Write one shard atomically (temp file + rename): a killed writer leaves no partial shard."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=3, mtime=0) as gz:
        for doc in docs:
            gz.write(json.dumps(document_to_record(doc), ensure_ascii=False).encode("utf-8") + b"\n")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)


def read_jsonl_gz(path: Path) -> list[Document]:
    """Read a shard this module wrote (trusted format)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [record_to_document(json.loads(line)) for line in f if line.strip()]


def file_fingerprint(path: Path) -> str:
    """Cheap identity of an input file or directory: names, sizes and mtimes."""
    h = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in paths:
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]
