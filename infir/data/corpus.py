"""From configured sources to a tokenizer and per-domain token streams.

This is the data preparation ``train.py`` runs before building the trainer:
collect documents from every source, enforce the split and synthetic-data
policies, train (or load) the tokenizer, and tokenise each (domain, split)
stream into cached shards. Every artifact is content-addressed, so a sweep's
jobs and a resumed run reuse the same files.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from transformers import PreTrainedTokenizerBase

from infir.config.errors import ConfigError
from infir.data.cache import cached_artifact, content_key
from infir.data.documents import HELDOUT_EVAL, SPLITS, TRAIN, VALIDATION, Document
from infir.data.execution import ExecutorSpec, LazyExecutor
from infir.data.token_shards import write_stream
from infir.models.tokenizer import trained_or_loaded_tokenizer

log = logging.getLogger(__name__)


class DocumentSource(Protocol):
    """What the data layer needs from a source: documents tagged with a split, and an identity."""

    name: str
    domain: str

    def documents(self) -> Iterable[Document]: ...

    def fingerprint(self) -> str: ...


@dataclass
class PreparedCorpus:
    tokenizer: PreTrainedTokenizerBase
    tokenizer_dir: Path
    streams_dir: Path
    domains: list[str]
    stats: dict[str, Any]

    def stream_dir(self, domain: str, split: str) -> Path:
        return self.streams_dir / domain / split


def check_synthetic_policy(documents: Iterable[Document], allow_synthetic: bool, phase: str) -> None:
    """The paper's lesson (PAPER.md §2): synthetic data belongs in annealing, not pre-training."""
    if phase != "pretrain" or allow_synthetic:
        return
    sources = sorted({d.source for d in documents if d.synthetic and d.split == TRAIN})
    if sources:
        raise ConfigError(f"data_mix: synthetic sources {sources} in a pre-training mix; InfiR found synthetic "
                         "data helps only in annealing. Remove them or set data_mix.allow_synthetic=true.")


def collect_documents(sources: Mapping[str, DocumentSource]) -> dict[str, dict[str, list[Document]]]:
    """Group every source's documents by domain and split."""
    grouped: dict[str, dict[str, list[Document]]] = defaultdict(lambda: defaultdict(list))
    for name, source in sources.items():
        for doc in source.documents():
            if doc.split not in SPLITS:
                raise ValueError(f"data_mix.sources.{name}: document {doc.id} has unknown split {doc.split!r}")
            grouped[doc.domain][doc.split].append(doc)
    return grouped


def tokenizer_training_texts(train_docs: Mapping[str, list[Document]], max_bytes: int) -> list[str]:
    """Round-robin across domains up to ``max_bytes`` so no domain dominates the vocabulary."""
    texts, used = [], 0
    for doc in itertools.chain.from_iterable(itertools.zip_longest(*train_docs.values())):
        if doc is None:
            continue
        if used >= max_bytes:
            break
        texts.append(doc.text)
        used += len(doc.text.encode())
    return texts


def prepare_corpus(sources: Mapping[str, DocumentSource], weights: Mapping[str, float],
                   tokenizer_cfg: Mapping[str, Any], cache_dir: str | Path, phase: str = "pretrain",
                   allow_synthetic: bool = False, shard_tokens: int = 100_000_000,
                   execution: ExecutorSpec | None = None) -> PreparedCorpus:
    """Collect, check, tokenise (on ``execution``'s executor: the curation one; same shards on any).
    Held-out evaluation documents are never tokenised for training."""
    grouped = collect_documents(sources)
    unknown = sorted(set(weights) - set(grouped))
    if unknown:
        raise ValueError(f"data_mix.weights names domains {unknown} that no source provides "
                         f"(sources give {sorted(grouped)})")
    domains = sorted(d for d, w in weights.items() if w > 0)
    all_docs = [doc for d in domains for docs in grouped[d].values() for doc in docs]
    check_synthetic_policy(all_docs, allow_synthetic, phase)
    for domain in domains:
        for split in (TRAIN, VALIDATION):
            if not grouped[domain][split]:
                raise ValueError(f"data_mix: domain {domain!r} has no {split} documents; "
                                 "add a source or adjust its split fractions")

    tokenizer, tokenizer_dir = trained_or_loaded_tokenizer(
        tokenizer_cfg.get("path"),
        tokenizer_training_texts({d: grouped[d][TRAIN] for d in domains}, int(tokenizer_cfg["train_bytes"]))
        if not tokenizer_cfg.get("path") else [],
        int(tokenizer_cfg["vocab_size"]), int(tokenizer_cfg.get("min_frequency", 2)), cache_dir,
        split_digits=bool(tokenizer_cfg.get("split_digits", False)))

    spec = {"tokenizer": str(tokenizer_dir.resolve()), "shard_tokens": shard_tokens,
            "sources": {name: s.fingerprint() for name, s in sorted(sources.items())}, "domains": domains,
            "documents": content_key([[d.id, len(d.text)] for d in all_docs])}

    def build(out: Path) -> dict[str, Any]:
        counts = {}
        with LazyExecutor(execution or ExecutorSpec()) as executor:
            for domain in domains:
                for split in (TRAIN, VALIDATION):
                    docs = grouped[domain][split]
                    info = write_stream((d.text for d in docs), tokenizer, out / domain / split, shard_tokens,
                                        executor=executor)
                    counts[f"{domain}/{split}"] = {"documents": info["documents"], "tokens": info["tokens"]}
        return {"streams": counts}

    streams_dir = cached_artifact(cache_dir, "token_streams", spec, build)
    stats = {f"{d}/{s}": len(grouped[d][s]) for d in domains for s in (TRAIN, VALIDATION, HELDOUT_EVAL)}
    return PreparedCorpus(tokenizer, tokenizer_dir, streams_dir, domains, {"documents": stats})
