"""Token shards: tokenised documents on disk as flat numpy memmaps.

Each (domain, split) stream is a list of shard files ``shard_NNNNN.bin`` holding
the concatenated token ids of whole documents, each followed by EOS, with
``shard_NNNNN.docs.npy`` giving every document's start offset, so document
boundaries survive packing. The dtype is the narrowest that fits the vocab.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerBase

from infir.data.iteration import batched

SHARD_INFO = "stream.json"


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while ids fit (halves disk and page cache), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def write_stream(texts: Iterable[str], tokenizer: PreTrainedTokenizerBase, out_dir: Path,
                 shard_tokens: int = 100_000_000, batch_size: int = 256) -> dict:
    """Tokenise ``texts`` into shards under ``out_dir``; returns counts for the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dtype = token_dtype(len(tokenizer))
    eos = tokenizer.eos_token_id
    shards: list[dict] = []
    pending: list[np.ndarray] = []
    pending_tokens = 0

    def flush() -> None:
        nonlocal pending, pending_tokens
        if not pending:
            return
        name = f"shard_{len(shards):05d}"
        lengths = np.fromiter((len(p) for p in pending), dtype=np.int64, count=len(pending))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        np.concatenate(pending).astype(dtype, copy=False).tofile(out_dir / f"{name}.bin")
        np.save(out_dir / f"{name}.docs.npy", starts)
        shards.append({"name": name, "tokens": int(lengths.sum()), "documents": len(pending)})
        pending, pending_tokens = [], 0

    for batch in batched(texts, batch_size):
        encoded = tokenizer(batch, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        for ids in encoded:
            pending.append(np.asarray(ids + [eos], dtype=dtype))
            pending_tokens += len(ids) + 1
            if pending_tokens >= shard_tokens:
                flush()
    flush()
    info = {"dtype": dtype.name, "shards": shards, "tokens": sum(s["tokens"] for s in shards),
            "documents": sum(s["documents"] for s in shards)}
    (out_dir / SHARD_INFO).write_text(json.dumps(info, indent=2))
    return info


@dataclass
class TokenStream:
    """Read side of one (domain, split) stream: memmapped shards, split into fixed windows."""

    directory: Path
    seq_len: int

    def __post_init__(self) -> None:
        info_path = self.directory / SHARD_INFO
        if not info_path.is_file():
            raise FileNotFoundError(f"token stream {self.directory} has no {SHARD_INFO}; rebuild the cache")
        info = json.loads(info_path.read_text())
        dtype = np.dtype(info["dtype"])
        self.tokens = info["tokens"]
        self.documents = info["documents"]
        kept = [s["name"] for s in info["shards"] if s["tokens"] > self.seq_len]
        self._shards = [np.memmap(self.directory / f"{name}.bin", dtype=dtype, mode="r") for name in kept]
        self._shard_names = kept
        self._document_starts: dict[int, np.ndarray] = {}  # loaded on first use (document masking only)
        # A window holds seq_len + 1 tokens (inputs and shifted targets); consecutive
        # windows overlap by one token so every token is a target exactly once.
        per_shard = np.array([(len(m) - 1) // self.seq_len for m in self._shards], dtype=np.int64)
        self._first_window = np.concatenate([[0], np.cumsum(per_shard)])
        self.n_windows = int(self._first_window[-1])

    def window(self, index: int) -> np.ndarray:
        """Tokens of window ``index`` (``seq_len + 1`` ids), never crossing a shard."""
        shard, start = self._locate(index)
        return np.asarray(self._shards[shard][start : start + self.seq_len + 1], dtype=np.int64)

    def window_segments(self, index: int) -> np.ndarray:
        """Document index of each of window ``index``'s ``seq_len`` input positions, counted from 0 at its
        first position: from the shard's recorded document starts, so a document whose text happens to hold
        the EOS string is still one document."""
        shard, start = self._locate(index)
        starts = self._document_starts.get(shard)
        if starts is None:
            starts = self._document_starts[shard] = np.load(self.directory / f"{self._shard_names[shard]}.docs.npy")
        positions = np.arange(start, start + self.seq_len)
        return np.searchsorted(starts, positions, side="right") - np.searchsorted(starts, start, side="right")

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self.n_windows:
            raise IndexError(f"window {index} out of range for {self.directory} ({self.n_windows} windows)")
        shard = int(np.searchsorted(self._first_window, index, side="right") - 1)
        return shard, (index - int(self._first_window[shard])) * self.seq_len
