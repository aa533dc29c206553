"""Reading and writing documents: jsonl(.gz, .zst), json, parquet, Common Crawl WET, HF ``datasets`` dirs
(saved, or streamed with ``load_dataset(..., streaming=True)``), folders of files.

Bad input never crashes a pipeline and never vanishes: each unusable record is counted under
``rejected_<reason>`` (invalid_json, invalid_utf8, missing_text, missing_text_column, empty_text,
oversize, not_an_object, empty_file, corrupt_gzip, corrupt_zstd, corrupt_parquet, invalid_warc,
dangling_link, symlink_loop, unreadable) and the first few of each reason are logged with the file and
line they came from. A damaged ``.gz``, ``.zst`` or parquet file keeps the records before the damage.
Inside a folder each file is read in the format its name announces, every file once however many links
lead to it.

A record's text is one string field (``text_field``), or, with ``text_join`` set, several fields and
list-valued fields joined by it: FLAN's ``inputs`` + ``targets``, InfiMM-WebMath's interleaved
``text_list`` (None marks an image), Infinity-Instruct's ``conversations`` turns (``value``/``content``).
"""

from __future__ import annotations

import errno
import fnmatch
import gzip
import hashlib
import io
import json
import logging
import os
import stat
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Any

from infir.atomic_files import atomic_write_bytes
from infir.data.documents import Document
from infir.records.lines import GZIP_ERRORS, json_lines, open_lines

log = logging.getLogger(__name__)

CODE_EXTENSIONS = {".py": "python", ".js": "javascript", ".ts": "typescript", ".java": "java", ".c": "c",
                   ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".go": "go", ".rs": "rust",
                   ".rb": "ruby", ".php": "php", ".cs": "csharp", ".kt": "kotlin", ".swift": "swift",
                   ".scala": "scala", ".sh": "shell", ".sql": "sql", ".r": "r", ".jl": "julia", ".lua": "lua"}
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".ndjson", ".ndjson.gz",
                  # zstd: DCLM (.jsonl.zstd), Proof-pile-2 (.jsonl.zst); decompressed with pyarrow's codec
                  ".jsonl.zst", ".jsonl.zstd", ".json.zst", ".json.zstd")
ZSTD_SUFFIXES = (".zst", ".zstd")
WET_SUFFIXES = (".warc.wet.gz", ".warc.wet")   # Common Crawl's extracted-text files
FORMATS = ("auto", "jsonl", "json", "parquet", "wet", "hf_dataset", "hf_stream", "folder", "files")
# Keys of a list item (a conversation turn) that hold its text, in the order tried: ShareGPT, OpenAI, plain.
TURN_TEXT_KEYS = ("value", "content", "text")


class InputError(ValueError):
    """An input that cannot be used at all; the message names it (the CLI prints it as one line)."""


@dataclass
class Rejections:
    """Counts of unusable input records by reason, with a few logged samples of each."""

    counts: Counter = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    max_samples: int = 3

    def add(self, reason: str, where: str, detail: str = "", count: int = 1) -> None:
        key = f"rejected_{reason}"
        self.counts[key] += count
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


def data_format(path: Path) -> str | None:
    """The record format a file's name announces (jsonl, json, parquet, wet), or None for a text/code file."""
    name = path.name.lower()
    if name.endswith(WET_SUFFIXES):
        return "wet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(".json"):
        return "json"
    if name.endswith(".parquet"):
        return "parquet"
    return None


def is_hf_dataset_dir(path: Path) -> bool:
    """A directory written by ``datasets``' ``save_to_disk`` (a Dataset or a DatasetDict)."""
    return any((path / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json"))


@dataclass(frozen=True)
class InputSpec:
    """One configured input: where, in which format, which fields, and default provenance."""

    path: str                       # a file or folder; with format hf_stream also a hub dataset id
    # auto: by name (a folder: each file by its name) | jsonl | json | parquet | wet | hf_dataset
    # | hf_stream (datasets.load_dataset(path, hf_name, split=hf_split, streaming=True))
    # | folder (each file by its name) | files (every file of the folder is one text/code document)
    format: str = "auto"
    text_field: str | tuple[str, ...] = "text"  # several fields: joined by text_join
    id_field: str | None = "id"
    source: str | None = None
    domain: str = "web"
    glob: str = "**/*"              # which files of a folder are read
    max_bytes: int = 1_000_000      # larger texts are rejected as oversize
    # None: the text is one string field. A separator: the text fields, and list-valued ones (strings,
    # None for an image slot, turns {value|content|text: ...}), are joined with it.
    text_join: str | None = None
    hf_name: str | None = None      # hf_stream: the dataset's config name (e.g. "sample-10BT")
    hf_split: str = "train"         # hf_stream: the split to stream

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | str, where: str) -> InputSpec:
        """Build from a config mapping (or a bare path); an unknown or missing key is a one-line error."""
        if isinstance(node, str):
            node = {"path": node}
        if not isinstance(node, Mapping):
            raise InputError(f"{where}: expected a path or {{path: ..., format: ...}}, got {node!r}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(node) - set(known))
        if unknown:
            raise InputError(f"{where}: unknown key(s) {unknown} (known: {', '.join(known)})")
        if not node.get("path"):
            raise InputError(f"{where}: needs a path")
        if node.get("format", "auto") not in FORMATS:
            raise InputError(f"{where}.format={node['format']!r}: expected one of {', '.join(FORMATS)}")
        node = dict(node)
        text_field = node.get("text_field", "text")
        if not isinstance(text_field, str):
            if not isinstance(text_field, (list, tuple)) or not text_field \
                    or not all(isinstance(f, str) and f for f in text_field):
                raise InputError(f"{where}.text_field: expected a field name or a list of them, got {text_field!r}")
            if node.get("text_join") is None:
                raise InputError(f"{where}.text_field={list(text_field)}: several fields need text_join "
                                 "(the separator they are joined with, e.g. \"\\n\\n\")")
            node["text_field"] = tuple(text_field)
        return cls(**node)

    @property
    def text_fields(self) -> tuple[str, ...]:
        return (self.text_field,) if isinstance(self.text_field, str) else tuple(self.text_field)

    def resolved_format(self) -> str:
        if self.format != "auto":
            return self.format
        p = Path(self.path)
        if p.is_dir():
            return "hf_dataset" if is_hf_dataset_dir(p) else "folder"
        fmt = data_format(p)
        if fmt is None:
            raise InputError(f"inputs.path={self.path}: cannot tell the format from the name; set format to "
                             "jsonl, json, parquet, hf_dataset, folder or files")
        return fmt


# --- records -> documents ------------------------------------------------------------------------


def _joined_pieces(name: str, value: Any) -> tuple[list[str], str | None]:
    """The text pieces of one field under ``text_join``: a string, or a list of strings, None (an image slot
    of an interleaved document) and turns (``{"value"|"content"|"text": str}``); else a problem."""
    if value is None or isinstance(value, str):
        return ([value] if value else []), None
    if not isinstance(value, list):
        return [], f"field {name!r} is {type(value).__name__}"
    pieces = []
    for item in value:
        if isinstance(item, dict):
            item = next((item[k] for k in TURN_TEXT_KEYS if isinstance(item.get(k), str)), item)
        if item is None:
            continue
        if not isinstance(item, str):
            return [], f"field {name!r} holds a {type(item).__name__} item (expected text, null or a turn with " \
                       f"{'/'.join(TURN_TEXT_KEYS)})"
        if item:
            pieces.append(item)
    return pieces, None


def _record_text(record: dict, spec: InputSpec) -> tuple[str | None, str]:
    """The record's text, or None and why there is none."""
    missing = [f for f in spec.text_fields if f not in record]
    if missing:
        return None, f"no field {missing[0]!r} (fields: {', '.join(map(str, record))})"
    if spec.text_join is None:
        text = record[spec.text_field]
        if text is None:
            return None, f"field {spec.text_field!r} is null"
        if not isinstance(text, str):
            return None, f"field {spec.text_field!r} is {type(text).__name__}"
        return text, ""
    pieces: list[str] = []
    for name in spec.text_fields:
        found, problem = _joined_pieces(name, record[name])
        if problem:
            return None, problem
        pieces += found
    return spec.text_join.join(pieces), ""


def _record_to_document(record: Any, spec: InputSpec, where: str, default_id: str,
                        rejections: Rejections) -> Document | None:
    if not isinstance(record, dict):
        rejections.add("not_an_object", where, repr(record)[:80])
        return None
    text, problem = _record_text(record, spec)
    if text is None:
        rejections.add("missing_text", where, problem)
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
    doc_id = str(raw_id) if raw_id not in (None, "") else default_id
    if isinstance(record.get("metadata"), dict):  # our own shard format
        meta = dict(record["metadata"])
    else:
        meta = {k: v for k, v in record.items() if k not in (*spec.text_fields, spec.id_field, "source", "domain")}
    return Document(id=doc_id, text=text, source=str(record.get("source") or spec.source or Path(spec.path).stem),
                    domain=str(record.get("domain") or spec.domain), metadata=meta)


def _documents(records: Iterable[tuple[int, Any]], path: Path, spec: InputSpec, name: str, sep: str,
               rejections: Rejections) -> Iterator[Document]:
    for index, record in records:
        doc = _record_to_document(record, spec, f"{path}{sep}{index}", f"{name}:{index}", rejections)
        if doc is not None:
            yield doc


def _zstd_lines(raw: IO[bytes], path: Path, rejections: Rejections) -> Iterator[bytes]:
    """Lines of a zstd stream; damage ends the file there (the lines before it are kept, reported once)."""
    lineno = 0
    try:
        for lineno, line in enumerate(raw, start=1):
            yield line
    except OSError as err:  # pyarrow: "Truncated compressed stream", "ZSTD decompress failed: ..."
        rejections.add("corrupt_zstd", f"{path}:{lineno + 1}",
                       f"compressed data unreadable from line {lineno + 1} on, earlier records kept ({err})")


def _read_jsonl(path: Path, spec: InputSpec, rejections: Rejections, name: str) -> Iterator[Document]:
    if path.name.lower().endswith(ZSTD_SUFFIXES):
        import pyarrow as pa  # a dependency already (parquet); its zstd codec spares the zstandard package

        with io.BufferedReader(pa.input_stream(str(path), compression="zstd")) as raw:
            lines = _zstd_lines(raw, path, rejections)
            yield from _documents(json_lines(lines, path, rejections.add), path, spec, name, ":", rejections)
        return
    with open_lines(path) as raw:
        yield from _documents(json_lines(raw, path, rejections.add), path, spec, name, ":", rejections)


def _read_json(path: Path, spec: InputSpec, rejections: Rejections, name: str) -> Iterator[Document]:
    """A JSON array of records, one record, or (as many ``.json`` files are) JSON lines."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        rejections.add("invalid_utf8", str(path), str(err))
        return
    if not text.strip():
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg != "Extra data":  # one broken value, not several values
            rejections.add("invalid_json", f"{path}:{err.lineno}", str(err))
            return
        lines = io.BytesIO(text.encode("utf-8"))
        yield from _documents(json_lines(lines, path, rejections.add), path, spec, name, ":", rejections)
        return
    records = value if isinstance(value, list) else [value]
    yield from _documents(enumerate(records, start=1), path, spec, name, "#", rejections)


def _read_parquet(path: Path, spec: InputSpec, rejections: Rejections, name: str) -> Iterator[Document]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    index = 0
    try:
        table = pq.ParquetFile(path)
        columns = table.schema_arrow.names
        missing = [f for f in spec.text_fields if f not in columns]
        if missing and table.metadata.num_rows:
            rejections.add("missing_text_column", str(path), f"no column {missing[0]!r} (columns: "
                           f"{', '.join(columns)}); set text_field", count=table.metadata.num_rows)
            return
        for batch in table.iter_batches(batch_size=4096):
            for record in batch.to_pylist():
                index += 1
                doc = _record_to_document(record, spec, f"{path}#{index}", f"{name}:{index}", rejections)
                if doc is not None:
                    yield doc
    except (pa.ArrowException, OSError) as err:
        rejections.add("corrupt_parquet", f"{path}#{index + 1}",
                       f"unreadable from row {index + 1} on, earlier rows kept ({err})")


def _read_hf_dataset(path: Path, spec: InputSpec, rejections: Rejections, name: str) -> Iterator[Document]:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    splits = loaded.values() if isinstance(loaded, datasets.DatasetDict) else [loaded]
    index = 0
    for split in splits:
        missing = [f for f in spec.text_fields if f not in split.column_names]
        if missing and len(split):
            rejections.add("missing_text_column", str(path), f"no column {missing[0]!r} (columns: "
                           f"{', '.join(split.column_names)}); set text_field", count=len(split))
            index += len(split)
            continue
        for record in split:
            index += 1
            doc = _record_to_document(record, spec, f"{path}#{index}", f"{name}:{index}", rejections)
            if doc is not None:
                yield doc


def _warc_headers(raw: IO[bytes]) -> dict[str, str] | None:
    """The header block of the next WARC record (names lower-cased), None at the end of the file."""
    line = raw.readline()
    while line and not line.strip():  # the blank lines that end the previous record
        line = raw.readline()
    if not line:
        return None
    if not line.startswith(b"WARC/"):
        raise ValueError(f"expected a WARC version line, got {line[:40]!r}")
    headers = {}
    for line in iter(raw.readline, b""):
        if not line.strip():
            break
        key, _, value = line.decode("utf-8", "replace").partition(":")
        headers[key.strip().lower()] = value.strip()
    return headers


def _read_wet(path: Path, spec: InputSpec, rejections: Rejections, name: str) -> Iterator[Document]:
    """Common Crawl WET: WARC ``conversion`` records hold each page's extracted plain text; the id is the
    record's ``WARC-Record-ID``; url, date and detected languages go to the metadata. Other records
    (``warcinfo``) are skipped. A malformed record ends the file there, the pages before it are kept."""
    wet_spec = replace(spec, text_field="text", id_field="id", text_join=None)
    index = 0
    with open_lines(path) as raw:
        try:
            while (headers := _warc_headers(raw)) is not None:
                length = int(headers.get("content-length", "-1"))
                if length < 0:
                    raise ValueError("a record without Content-Length")
                block = raw.read(length)
                if len(block) < length:
                    raise ValueError(f"a truncated record ({len(block)} of {length} bytes)")
                if headers.get("warc-type") != "conversion":
                    continue
                index += 1
                where = f"{path}#{index}"
                try:
                    text = block.decode("utf-8")
                except UnicodeDecodeError as err:
                    rejections.add("invalid_utf8", where, str(err))
                    continue
                record = {"text": text, "id": headers.get("warc-record-id"), "url": headers.get("warc-target-uri"),
                          "date": headers.get("warc-date"),
                          "languages": headers.get("warc-identified-content-language")}
                doc = _record_to_document(record, wet_spec, where, f"{name}:{index}", rejections)
                if doc is not None:
                    yield doc
        except GZIP_ERRORS as err:
            rejections.add("corrupt_gzip", f"{path}#{index + 1}",
                           f"compressed data unreadable from record {index + 1} on, earlier records kept ({err})")
        except ValueError as err:
            rejections.add("invalid_warc", f"{path}#{index + 1}",
                           f"{err}; the rest of the file is skipped, earlier records kept")


def hf_offline() -> bool:
    """HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set: a hub id must not be streamed (nothing downloads)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _read_hf_stream(path: Path, spec: InputSpec, rejections: Rejections, name: str) -> Iterator[Document]:
    """``datasets.load_dataset(path, hf_name, split=hf_split, streaming=True)``: a local dataset folder (any
    layout ``datasets`` infers: parquet, json(l), csv, ... files, or a README's configs) or, online, a hub id.
    Records are read one at a time; nothing is converted or cached to disk."""
    import datasets

    try:
        stream = datasets.load_dataset(spec.path, spec.hf_name, split=spec.hf_split, streaming=True)
    except (OSError, ValueError) as err:  # no such dataset/config/split, no network, unreadable files
        raise InputError(f"inputs.path={spec.path}: format=hf_stream cannot open it (hf_name={spec.hf_name}, "
                         f"hf_split={spec.hf_split}): {str(err).splitlines()[0] if str(err) else type(err).__name__}"
                         ) from None
    for index, record in enumerate(stream, start=1):
        doc = _record_to_document(record, spec, f"{spec.path}#{index}", f"{name}:{index}", rejections)
        if doc is not None:
            yield doc


_RECORD_READERS = {"jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet, "wet": _read_wet,
                   "hf_dataset": _read_hf_dataset, "hf_stream": _read_hf_stream}


def _read_records(path: Path, fmt: str, spec: InputSpec, rejections: Rejections, name: str) -> Iterator[Document]:
    """One file (or dataset directory) of records; a file holding none is counted as ``empty_file``."""
    before, yielded = rejections.total, 0
    try:
        for doc in _RECORD_READERS[fmt](path, spec, rejections, name):
            yielded += 1
            yield doc
    except OSError as err:  # permissions, I/O errors: the file, not the run, is lost
        rejections.add("unreadable", str(path), str(err))
        return
    if yielded == 0 and rejections.total == before:
        rejections.add("empty_file", str(path), "the file holds no records")


# --- folders -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderEntry:
    """One thing found in a folder: a file, an HF datasets directory, or a link that leads nowhere."""

    path: Path
    rel: str                    # posix path relative to the folder, for ids, globs and messages
    is_dataset: bool = False    # a ``save_to_disk`` directory, read as one input
    problem: str | None = None  # dangling_link | symlink_loop | unreadable
    detail: str = ""


def walk_folder(root: Path, datasets_as_units: bool = True) -> Iterator[FolderEntry]:
    """Every file under ``root`` once, in name order. Symlinks are followed; a file or folder reached a
    second time (through a link or a hard link) is skipped; a dangling link, a link looping back into an
    enclosing folder and an unreadable entry are reported so that readers can count them."""
    seen_files: set[tuple[int, int]] = set()
    seen_dirs: set[tuple[int, int]] = set()

    def visit(directory: Path, rel_dir: str, ancestors: frozenset[tuple[int, int]]) -> Iterator[FolderEntry]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as err:
            yield FolderEntry(directory, rel_dir or ".", problem="unreadable", detail=str(err))
            return
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            path = Path(entry.path)
            try:
                st = entry.stat()  # follows symlinks
            except FileNotFoundError:
                if entry.is_symlink():
                    yield FolderEntry(path, rel, problem="dangling_link",
                                      detail=f"links to missing {os.readlink(path)}")
                continue  # deleted while we read
            except OSError as err:
                yield FolderEntry(path, rel, problem="symlink_loop" if err.errno == errno.ELOOP else "unreadable",
                                  detail=str(err))
                continue
            key = (st.st_dev, st.st_ino)
            if stat.S_ISDIR(st.st_mode):
                if key in ancestors:
                    yield FolderEntry(path, rel, problem="symlink_loop", detail="links back to an enclosing folder")
                elif key not in seen_dirs:
                    seen_dirs.add(key)
                    if datasets_as_units and is_hf_dataset_dir(path):
                        yield FolderEntry(path, rel, is_dataset=True)
                    else:
                        yield from visit(path, rel, ancestors | {key})
            elif stat.S_ISREG(st.st_mode) and key not in seen_files:  # fifos and devices are no documents
                seen_files.add(key)
                yield FolderEntry(path, rel)

    root_stat = root.stat()
    root_key = (root_stat.st_dev, root_stat.st_ino)
    seen_dirs.add(root_key)
    yield from visit(root, "", frozenset({root_key}))


def glob_matches(rel: str, pattern: str) -> bool:
    """``Path.glob`` semantics on a relative posix path: ``**`` spans zero or more folders."""
    def match(parts: list[str], pats: list[str]) -> bool:
        if not pats:
            return not parts
        if pats[0] == "**":
            return any(match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
        return bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and match(parts[1:], pats[1:])

    return match(rel.split("/"), pattern.split("/"))


def _text_file_document(entry: FolderEntry, root: Path, spec: InputSpec, rejections: Rejections) -> Document | None:
    where = str(entry.path)
    try:
        size = entry.path.stat().st_size
        if size > spec.max_bytes:  # reject before reading a huge blob into memory
            rejections.add("oversize", where, f"{size} bytes > {spec.max_bytes}")
            return None
        data = entry.path.read_bytes()
    except OSError as err:
        rejections.add("unreadable", where, str(err))
        return None
    try:
        text = data.decode("utf-8-sig")  # a BOM is no part of the text
    except UnicodeDecodeError as err:
        rejections.add("invalid_utf8", where, str(err))
        return None
    language = CODE_EXTENSIONS.get(entry.path.suffix.lower())
    record = {"id": f"{root.name}/{entry.rel}", "text": text, "path": entry.rel,
              "domain": "code" if language else spec.domain}
    if language:
        record["language"] = language
    text_spec = replace(spec, text_field="text", id_field="id", text_join=None)
    return _record_to_document(record, text_spec, where, f"{root.name}/{entry.rel}", rejections)


def _read_folder(root: Path, spec: InputSpec, rejections: Rejections, name: str,
                 per_file_format: bool = True) -> Iterator[Document]:
    """Each file by the format its name announces (or, with ``per_file_format=False``, each as text)."""
    matched = 0
    for entry in walk_folder(root, datasets_as_units=per_file_format):
        if not glob_matches(entry.rel, spec.glob):
            continue
        matched += 1
        if entry.problem:
            rejections.add(entry.problem, str(entry.path), entry.detail)
            continue
        fmt = ("hf_dataset" if entry.is_dataset else data_format(entry.path)) if per_file_format else None
        if fmt is not None:
            yield from _read_records(entry.path, fmt, spec, rejections, f"{name}/{entry.rel}")
        else:
            doc = _text_file_document(entry, root, spec, rejections)
            if doc is not None:
                yield doc
    if matched == 0:
        log.warning("inputs.path=%s: the folder holds no file matching glob %r", root, spec.glob)


def _read_files(root: Path, spec: InputSpec, rejections: Rejections, name: str) -> Iterator[Document]:
    return _read_folder(root, spec, rejections, name, per_file_format=False)


def _read_single(fmt: str):
    def read(path: Path, spec: InputSpec, rejections: Rejections, name: str) -> Iterator[Document]:
        return _read_records(path, fmt, spec, rejections, name)
    return read


_READERS = {**{fmt: _read_single(fmt) for fmt in _RECORD_READERS}, "folder": _read_folder, "files": _read_files}


def require_input(path: Path) -> None:
    """Fail fast, naming the path, when an input does not exist."""
    if not path.exists():
        why = f"a dangling symlink to {os.readlink(path)}" if path.is_symlink() else "no such file or directory"
        raise FileNotFoundError(f"inputs.path: {why}: {path}")


def read_documents(spec: InputSpec, rejections: Rejections, name: str | None = None) -> Iterator[Document]:
    """Documents of one input; unusable records go to ``rejections``. Fails fast on a bad path.

    ``name`` starts the ids of records without one (``<name>:<line>``); default: the path's last part.
    """
    path = Path(spec.path)
    if spec.format == "hf_stream" and not path.exists():  # a hub id (or a typo of a local path)
        if hf_offline():
            raise InputError(f"inputs.path={spec.path}: no such local directory, and HF_HUB_OFFLINE forbids "
                             f"streaming it as a hub dataset id; download it and give the local path")
        return _READERS["hf_stream"](path, spec, rejections, name or spec.path.replace("/", "--"))
    require_input(path)
    fmt = spec.resolved_format()
    if fmt not in _READERS:
        raise InputError(f"inputs.format: unknown format {fmt!r} ({', '.join(FORMATS)})")
    if path.is_dir() != (fmt in ("folder", "files", "hf_dataset", "hf_stream")):
        raise InputError(f"inputs.path={path}: format={fmt} needs a {'file' if path.is_dir() else 'folder'}")
    return _READERS[fmt](path, spec, rejections, name or path.name)


# --- shards we write -----------------------------------------------------------------------------


def document_to_record(doc: Document) -> dict[str, Any]:
    return {"id": doc.id, "text": doc.text, "source": doc.source, "domain": doc.domain, "metadata": doc.metadata}


def record_to_document(record: dict[str, Any]) -> Document:
    return Document(record["id"], record["text"], record["source"], record["domain"], record.get("metadata") or {})


def write_jsonl_gz(docs: list[Document], path: Path) -> None:
    """Write one shard atomically: a killed writer leaves no partial shard."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=3, mtime=0) as gz:
        for doc in docs:
            gz.write(json.dumps(document_to_record(doc), ensure_ascii=False).encode("utf-8") + b"\n")
    atomic_write_bytes(path, buffer.getvalue())


def read_jsonl_gz(path: Path) -> list[Document]:
    """Read a shard this module wrote (trusted format)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [record_to_document(json.loads(line)) for line in f if line.strip()]


def file_fingerprint(path: Path) -> str:
    """Cheap identity of an input file or directory: names, sizes and mtimes of what the readers would read."""
    require_input(path)
    h = hashlib.sha256()
    entries = walk_folder(path, datasets_as_units=False) if path.is_dir() else [FolderEntry(path, path.name)]
    for entry in entries:
        if entry.problem:
            h.update(f"{entry.rel}|{entry.problem}".encode())
            continue
        st = entry.path.stat()
        h.update(f"{entry.rel}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]
