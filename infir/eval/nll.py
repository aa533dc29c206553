"""Offline NLL evaluation (PAPER.md §2.3): per-domain NLL, perplexity and bits per byte on held-out text.

Bits per byte is the comparable number across tokenizers (each curation recipe trains its own), so
the data-quality ablation can score exported models with it as well as with the training-time
``val/bpb``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from infir.data.documents import Document
from infir.eval.likelihood import document_nll


def heldout_documents(sources: Mapping[str, Any], split: str, max_per_domain: int) -> dict[str, list[str]]:
    """Texts of ``split`` from instantiated sources, grouped by domain, at most ``max_per_domain`` each."""
    docs = (doc for source in sources.values() for doc in source.documents() if doc.metadata.get("split") == split)
    grouped = documents_by_domain(docs, max_per_domain)
    if not grouped:
        raise ValueError(f"eval.nll: no document of split {split!r} in sources {sorted(sources)}")
    return grouped


def domain_nll(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, texts_by_domain: Mapping[str, Iterable[str]],
               max_length: int, batch_size: int = 8) -> dict[str, dict[str, float]]:
    """Per domain: mean NLL per token (nats), perplexity exp(NLL), bits per UTF-8 byte, token and doc counts."""
    results = {}
    for domain, texts in texts_by_domain.items():
        texts = list(texts)
        rows = document_nll(model, tokenizer, texts, max_length=max_length, batch_size=batch_size)
        nll, tokens, n_bytes = (sum(r[i] for r in rows) for i in range(3))
        mean = nll / max(tokens, 1)
        results[domain] = {"nll": mean, "perplexity": math.exp(min(mean, 50.0)),
                           "bpb": nll / math.log(2) / max(n_bytes, 1), "tokens": float(tokens),
                           "documents": float(len(texts))}
    return results


def documents_by_domain(documents: Iterable[Document], max_per_domain: int) -> dict[str, list[str]]:
    """Group already-loaded documents (e.g. a curated validation set) by domain."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for doc in documents:
        if len(grouped[doc.domain]) < max_per_domain:
            grouped[doc.domain].append(doc.text)
    return dict(grouped)
