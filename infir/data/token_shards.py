"""Token shards: tokenised documents on disk as flat numpy memmaps.

Each (domain, split) stream is a list of shard files ``shard_NNNNN.bin`` holding
the concatenated token ids of whole documents, each followed by EOS, with
``shard_NNNNN.docs.npy`` giving every document's start offset, so document
boundaries survive packing. The dtype is the narrowest that fits the vocab.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerBase

from infir.data.execution import Executor
from infir.data.batching import batched

SHARD_INFO = "stream.json"


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while ids fit (halves disk and page cache), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def encode_texts(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, batch_size: int = 256) -> list[np.ndarray]:
    """Each text's token ids followed by EOS, in the stream's dtype. Per text: batching does not change ids."""
    dtype = token_dtype(len(tokenizer))
    eos = tokenizer.eos_token_id
    out = []
    for batch in batched(texts, batch_size):
        encoded = tokenizer(list(batch), add_special_tokens=False, return_attention_mask=False)["input_ids"]
        out.extend(np.asarray(ids + [eos], dtype=dtype) for ids in encoded)
    return out


@dataclass
class _EncodeTask:
    texts: list[str]
    tokenizer: PreTrainedTokenizerBase
    batch_size: int


def _encode_task(task: _EncodeTask) -> list[np.ndarray]:
    return encode_texts(task.texts, task.tokenizer, task.batch_size)


class _ShardWriter:
    """Cuts a document sequence into shards of >= ``shard_tokens`` tokens (whole documents), in order."""

    def __init__(self, out_dir: Path, dtype: np.dtype, shard_tokens: int) -> None:
        self.out_dir, self.dtype, self.shard_tokens = out_dir, dtype, shard_tokens
        self.shards: list[dict] = []
        self.pending: list[np.ndarray] = []
        self.pending_tokens = 0

    def add(self, ids: np.ndarray) -> None:
        self.pending.append(ids)
        self.pending_tokens += len(ids)
        if self.pending_tokens >= self.shard_tokens:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        name = f"shard_{len(self.shards):05d}"
        lengths = np.fromiter((len(p) for p in self.pending), dtype=np.int64, count=len(self.pending))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        np.concatenate(self.pending).astype(self.dtype, copy=False).tofile(self.out_dir / f"{name}.bin")
        np.save(self.out_dir / f"{name}.docs.npy", starts)
        self.shards.append({"name": name, "tokens": int(lengths.sum()), "documents": len(self.pending)})
        self.pending, self.pending_tokens = [], 0

    def finish(self) -> dict:
        self.flush()
        info = {"dtype": self.dtype.name, "shards": self.shards, "tokens": sum(s["tokens"] for s in self.shards),
                "documents": sum(s["documents"] for s in self.shards)}
        (self.out_dir / SHARD_INFO).write_text(json.dumps(info, indent=2))
        return info


def write_stream(texts: Iterable[str], tokenizer: PreTrainedTokenizerBase, out_dir: Path,
                 shard_tokens: int = 100_000_000, batch_size: int = 256, executor: Executor | None = None,
                 chunk_docs: int = 8192) -> dict:
    """Tokenise ``texts`` into shards under ``out_dir``; returns counts for the manifest.

    With an ``executor``, chunks of ``chunk_docs`` texts are tokenised as parallel tasks and their ids come back
    in order to this process, which alone cuts and writes the shards: the files are byte-identical to a serial
    run's whatever the executor or worker count (shard cuts depend only on the document sequence).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = _ShardWriter(out_dir, token_dtype(len(tokenizer)), shard_tokens)
    if executor is None or executor.workers == 1:
        chunks = (encode_texts(batch, tokenizer, batch_size) for batch in batched(texts, batch_size))
    else:
        chunks = _parallel_chunks(texts, tokenizer, batch_size, executor, chunk_docs)
    for chunk in chunks:
        for ids in chunk:
            writer.add(ids)
    return writer.finish()


def _parallel_chunks(texts: Iterable[str], tokenizer: PreTrainedTokenizerBase, batch_size: int, executor: Executor,
                     chunk_docs: int) -> Iterator[list[np.ndarray]]:
    """One executor round per ``workers`` chunks: memory stays at a few chunks' ids, not the whole stream's."""
    for group in batched(batched(texts, chunk_docs), executor.workers):
        tasks = [_EncodeTask(list(chunk), tokenizer, batch_size) for chunk in group]
        for ids in executor.map(_encode_task, tasks, "tokenise"):
            yield ids


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
