"""A pre-training source read from dataset files on disk: a hub dataset's local snapshot, Common Crawl WET files.

The paper's sources (``data_mix=paper``, PAPER.md §2) are public datasets far too large to ship, so a
``FileSource`` names where a local copy lies (``path``) and where it comes from (``hub_id``, ``download``),
and reads it through the readers of ``python -m infir.data inputs=[...]`` (:mod:`infir.data.doc_io`): one
file at a time, streamed, each bad record counted by reason. Nothing downloads at run time: a missing path is
an error that names the source and how to fetch it.

Each document gets the source's name and domain (a record's own ``source``/``domain`` columns are kept in the
metadata as ``record_source``/``record_domain``), an id ``<source>/<record id>`` (records without one:
``<source>/<file>:<line>``), and a split by a stable hash of that id (``validation_fraction``), so adding files
never moves a document between splits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from infir.data.cache import content_key
from infir.data.doc_io import (FORMATS, InputError, InputSpec, Rejections, data_format, glob_matches, read_documents,
                               walk_folder)
from infir.data.documents import TRAIN, VALIDATION, Document
from infir.data.splits import assign_split

log = logging.getLogger(__name__)

# Formats read as one unit (a whole folder, a saved or streamed dataset); the others are read file by file.
_WHOLE = ("hf_dataset", "hf_stream", "files")


class FileSource:
    """Documents of the data files under ``path`` that ``glob`` matches, in name order (``max_files``: the first N).

    ``format`` ``auto`` reads each file in the format its name announces (.parquet, .jsonl(.gz/.zst), .json.gz,
    .warc.wet.gz, ...) and skips files that announce none (README.md, .gitattributes); a record format reads every
    matched file in that format; ``hf_dataset``, ``hf_stream`` and ``files`` read ``path`` as one input.
    ``text_field``/``text_join``/``id_field`` say where a record's text and id are (:class:`InputSpec`).
    """

    def __init__(self, name: str, domain: str, path: str, format: str = "auto", glob: str = "**/*",
                 text_field: str | Sequence[str] = "text", text_join: str | None = None, id_field: str | None = "id",
                 hf_name: str | None = None, hf_split: str = "train", max_bytes: int = 1_000_000,
                 max_files: int | None = None, validation_fraction: float = 1e-4, hub_id: str | None = None,
                 download: str | None = None) -> None:
        self.name = name
        self.domain = domain
        self.where = f"data_mix.sources.{name}"
        if format not in FORMATS or format == "folder":
            raise InputError(f"{self.where}.format={format!r}: expected one of "
                             f"{', '.join(f for f in FORMATS if f != 'folder')}")
        if max_files is not None and (not isinstance(max_files, int) or max_files < 1):
            raise InputError(f"{self.where}.max_files must be a positive integer or null, got {max_files!r}")
        if not 0.0 <= float(validation_fraction) < 1.0:
            raise InputError(f"{self.where}.validation_fraction must be in [0, 1), got {validation_fraction!r}")
        self.path = str(path)
        self.format = format
        self.glob = glob
        self.max_files = max_files
        self.validation_fraction = float(validation_fraction)
        self.hub_id = hub_id
        self.download = download
        fields = text_field if isinstance(text_field, str) else list(text_field)  # a Hydra ListConfig too
        # validated once here (a wrong key is an error naming the source), reused for every file
        self.spec = InputSpec.from_config(
            {"path": self.path, "format": format, "text_field": fields, "text_join": text_join, "id_field": id_field,
             "source": name, "domain": domain, "glob": glob, "max_bytes": max_bytes, "hf_name": hf_name,
             "hf_split": hf_split}, self.where)

    def _fetch_hint(self) -> str:
        if self.download:
            return self.download
        if self.hub_id:
            return (f"download the hub dataset {self.hub_id} there (huggingface-cli download --repo-type dataset "
                    f"{self.hub_id} --include '{self.glob}' --local-dir {self.path})")
        return "put the source's files there"

    def _files(self) -> list[tuple[Path, str, str]]:
        """(path, format, id prefix) of each input, in name order."""
        root = Path(self.path)
        if self.format == "hf_stream" and not root.exists():  # a hub id: doc_io streams it (online) or refuses
            return [(root, "hf_stream", self.path.replace("/", "--"))]
        if not root.exists():
            raise FileNotFoundError(f"{self.where}.path: no such file or directory: {root}. {self._fetch_hint()}, "
                                    f"or point data_mix.root (or {self.where}.path) at a local copy")
        if self.format in _WHOLE or root.is_file():
            fmt = self.format if self.format != "auto" else (data_format(root) or "files")
            return [(root, fmt, root.name)]
        found, skipped = [], []
        for entry in walk_folder(root):
            if entry.problem or not glob_matches(entry.rel, self.glob):
                continue  # a dangling link or loop: not a data file of this source
            fmt = "hf_dataset" if entry.is_dataset else (
                self.format if self.format != "auto" else data_format(entry.path))
            if fmt is None:
                skipped.append(entry.rel)
                continue
            found.append((entry.path, fmt, entry.rel))
        if skipped:
            log.warning("%s: skipped %d matched file(s) that announce no data format (e.g. %s); narrow glob=%r",
                        self.where, len(skipped), skipped[0], self.glob)
        if not found:
            raise InputError(f"{self.where}: no data file under {root} matches glob {self.glob!r} "
                             f"({'only ' + ', '.join(skipped[:3]) if skipped else 'nothing matches'}). "
                             f"{self._fetch_hint()}")
        return found[: self.max_files] if self.max_files else found

    def inputs(self) -> list[InputSpec]:
        """One :class:`InputSpec` per input file: what ``python -m infir.data inputs=[...]`` would be given."""
        return [InputSpec(**{**self.spec.__dict__, "path": str(path), "format": fmt}) for path, fmt, _ in self._files()]

    def fingerprint(self) -> str:
        """The reader settings and each input file's name, size and mtime (a streamed hub id: its name only)."""
        files = []
        for path, fmt, rel in self._files():
            st = path.stat() if path.exists() else None
            files.append([rel, fmt, st.st_size if st else None, st.st_mtime_ns if st else None])
        settings = {**self.spec.__dict__, "path": None, "max_files": self.max_files,
                    "validation_fraction": self.validation_fraction}
        return content_key({"settings": settings, "files": files})

    def documents(self) -> Iterator[Document]:
        rejections = Rejections()
        n_docs = 0
        files = self._files()
        for path, fmt, rel in files:
            spec = InputSpec(**{**self.spec.__dict__, "path": str(path), "format": fmt})
            for doc in read_documents(spec, rejections, name=rel):
                if doc.source != self.name:
                    doc.metadata["record_source"] = doc.source
                if doc.domain != self.domain:
                    doc.metadata["record_domain"] = doc.domain
                doc.id = f"{self.name}/{doc.id}"
                doc.source, doc.domain = self.name, self.domain
                doc.metadata["split"] = assign_split(doc.id, self.name, {VALIDATION: self.validation_fraction},
                                                     TRAIN)
                n_docs += 1
                yield doc
        summary = ", ".join(f"{k}={v}" for k, v in sorted(rejections.counts.items()))
        if not n_docs:  # every record rejected: a wrong text_field, a format the files are not in, ...
            first = next(iter(rejections.samples.values()), [""])[0]
            raise InputError(f"{self.where}: no usable document in {len(files)} input(s) under {self.path} "
                             f"({summary or 'the files hold no records'}{'; e.g. ' + first if first else ''})"
                             f"{'. ' + self.download if self.download else ''}")
        if rejections.total:
            log.warning("%s: %d documents read, %s", self.where, n_docs, summary)
