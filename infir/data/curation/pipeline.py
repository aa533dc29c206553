"""From inputs and a recipe to curated shards, cached by (recipe, inputs).

``curate`` is what both ``python -m infir.data`` and ``train.py`` call: the
same recipe over the same inputs is computed once and reused; a killed run
resumes shard by shard.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from infir.atomic_files import atomic_write_text, remove_stale_temp_files
from infir.data.cache import content_key
from infir.data.curation.base import StageStats
from infir.data.batching import batched
from infir.data.curation.runner import MANIFEST, CurationResult, CurationRunner, Stage, stats_path, write_stats
from infir.data.curation.shard_files import JSONL_GZ, PARQUET, write_shard
from infir.data.doc_io import InputError, InputSpec, Rejections, file_fingerprint, read_documents
from infir.data.documents import TRAIN, Document
from infir.data.execution import ExecutorSpec

log = logging.getLogger(__name__)

# Recipe keys that say where and how wide a run executes, not what it computes (left out of cache keys).
EXECUTION_KEYS = ("executor", "workers", "ray", "fuse_map_stages")


@functools.cache
def curation_code_fingerprint() -> str:
    """Hash of the curation code itself: a changed rule or default must not reuse stale outputs."""
    package = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted([*package.glob("*.py"), package.parent / "doc_io.py"]):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def ingest_documents(docs: Iterable[Document], out_dir: Path, docs_per_shard: int,
                     suffix: str = JSONL_GZ) -> tuple[list[Path], StageStats]:
    """Shard in-memory documents (embedded sources) into the read stage."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = StageStats("read")
    shards = []
    for i, chunk in enumerate(batched(docs, docs_per_shard)):
        shard = out_dir / f"shard_{i:05d}{suffix}"
        if not stats_path(shard).is_file():
            write_shard(chunk, shard)
            write_stats(stats_path(shard), StageStats("read", len(chunk), len(chunk)))
        stats.read += len(chunk)
        stats.kept += len(chunk)
        shards.append(shard)
    return shards, stats


def ingest_inputs(inputs: Sequence[InputSpec], out_dir: Path, docs_per_shard: int,
                  suffix: str = JSONL_GZ) -> tuple[list[Path], StageStats]:
    """Read files (jsonl, parquet, HF datasets, folders) into shards; bad records are counted, not lost."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = StageStats("read")
    shards: list[Path] = []
    empty: list[str] = []  # inputs that gave no document, with why
    for n, spec in enumerate(inputs):
        done = out_dir / f"input_{n:03d}.done.json"
        if done.is_file():
            record = json.loads(done.read_text())
        else:
            rejections = Rejections()
            start = time.perf_counter()
            written = []
            for i, chunk in enumerate(batched(read_documents(spec, rejections), docs_per_shard)):
                shard = out_dir / f"shard_{n:03d}_{i:05d}{suffix}"
                write_shard(chunk, shard)
                written.append((shard.name, len(chunk)))
            record = {"shards": written, "rejected": dict(rejections.counts), "samples": rejections.samples,
                      "seconds": time.perf_counter() - start}
            atomic_write_text(done, json.dumps(record))
        kept = sum(count for _, count in record["shards"])
        if not kept:
            empty.append(f"{spec.path} ({_describe_rejected(record['rejected'])})")
            log.warning("inputs[%d]: no documents from %s", n, empty[-1])
        stats.read += kept + sum(record["rejected"].values())
        stats.kept += kept
        stats.dropped.update(record["rejected"])
        stats.seconds += record["seconds"]
        shards += [out_dir / name for name, _ in record["shards"]]
    if not stats.kept:  # nothing to curate: say so rather than "succeed" with an empty output
        raise InputError(f"curation read no usable document from its inputs: {'; '.join(empty)}")
    return shards, stats


def _describe_rejected(rejected: dict[str, int]) -> str:
    if not rejected:
        return "nothing to read: empty, or no file matches"
    return ", ".join(f"{reason}={count}" for reason, count in sorted(rejected.items()))


def curate(stages: Sequence[Stage], recipe: dict[str, Any], cache_dir: str | Path, *,
           documents: Iterable[Document] | None = None, documents_fingerprint: str | None = None,
           inputs: Sequence[InputSpec] = (), workers: int | ExecutorSpec = 1, docs_per_shard: int = 500,
           write_excluded: bool = False, progress: bool = True, fuse: bool = True) -> CurationResult:
    """Run ``stages`` over ``documents`` (with their fingerprint) or over file ``inputs``; cached.

    ``workers``: a worker count for the local executor, or an :class:`ExecutorSpec`. Neither it nor the
    recipe's own execution keys (``EXECUTION_KEYS``) enter the cache key: every executor writes the same bytes.
    """
    if (documents is None) == (not inputs):
        raise ValueError("curate: give either documents (with documents_fingerprint) or inputs")
    if documents is not None and not documents_fingerprint:
        raise ValueError("curate: documents need a documents_fingerprint for the cache key")
    fingerprints = [documents_fingerprint] if documents is not None else \
        [[spec.__dict__, file_fingerprint(Path(spec.path))] for spec in inputs]
    recipe_key = {k: v for k, v in recipe.items() if k not in EXECUTION_KEYS}
    key = content_key({"recipe": recipe_key, "inputs": fingerprints, "docs_per_shard": docs_per_shard,
                       "fuse": fuse, "code": curation_code_fingerprint()})
    work_dir = Path(cache_dir) / "curation" / key
    # Temp files of killed runs (shards, stats, classifier build dirs); a live writer's stay.
    remove_stale_temp_files(work_dir)
    remove_stale_temp_files(Path(cache_dir), max_depth=1)
    manifest = work_dir / MANIFEST
    if manifest.is_file():
        saved = json.loads(manifest.read_text())
        log.info("curation %s: reusing %s", recipe.get("name"), work_dir)
        return CurationResult([work_dir / p for p in saved["output_shards"]], saved["funnel"], work_dir)
    read_dir = work_dir / "00_read"
    suffix = PARQUET if stages else JSONL_GZ  # with no stage the read shards are the output
    runner = CurationRunner(stages, work_dir, workers, write_excluded, progress, fuse)
    with runner.executor:
        if stages:
            runner.executor.prestart()  # workers boot while the inputs are read
        if documents is not None:
            shards, read_stats = ingest_documents(documents, read_dir, docs_per_shard, suffix)
        else:
            shards, read_stats = ingest_inputs(inputs, read_dir, docs_per_shard, suffix)
        result = runner.run(shards, read_stats)
    record = {"recipe": recipe, "inputs": fingerprints, "funnel": result.funnel,
              "output_shards": [str(p.relative_to(work_dir)) for p in result.output_shards]}
    atomic_write_text(manifest, json.dumps(record, indent=2, default=str))
    return result


class CuratedSource:
    """A document source whose training split passes through a curation recipe (cached).

    Validation and held-out documents are passed through untouched: they are the
    clean evaluation text every recipe is compared on.
    """

    def __init__(self, source: Any, stages: Sequence[Stage], recipe: dict[str, Any], cache_dir: str | Path,
                 workers: int | ExecutorSpec = 1, docs_per_shard: int = 500, fuse: bool = True) -> None:
        self.source = source
        self.name = source.name
        self.domain = getattr(source, "domain", "mixed")
        self.stages = list(stages)
        self.recipe = recipe
        self.cache_dir = cache_dir
        self.workers = workers
        self.docs_per_shard = docs_per_shard
        self.fuse = fuse
        self.result: CurationResult | None = None

    def fingerprint(self) -> str:
        recipe = {k: v for k, v in self.recipe.items() if k not in EXECUTION_KEYS}
        return content_key({"source": self.source.fingerprint(), "recipe": recipe})

    def run(self, write_excluded: bool = False, progress: bool = False) -> tuple[CurationResult, list[Document]]:
        """Curate the training split (cached); returns the result and the untouched other splits."""
        train, rest = [], []
        for doc in self.source.documents():
            (train if doc.split == TRAIN else rest).append(doc)
        self.result = curate(self.stages, self.recipe, self.cache_dir, documents=train,
                             documents_fingerprint=self.source.fingerprint(), workers=self.workers,
                             docs_per_shard=self.docs_per_shard, write_excluded=write_excluded, progress=progress,
                             fuse=self.fuse)
        return self.result, rest

    def documents(self) -> Iterator[Document]:
        result, rest = self.run()
        yield from result.documents()
        yield from rest
