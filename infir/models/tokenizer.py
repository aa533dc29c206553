"""Tokenizer: a byte-level BPE trained on the training text, or any local HF tokenizer.

Byte-level BPE never produces unknown tokens, so code, maths and any language
round-trip exactly; training it on the run's own corpus keeps the embedded
default small (a few thousand tokens) while full-scale runs point
``tokenizer.path`` at a local copy of the Llama-3.2 tokenizer.

Also the sequence-start policy (:func:`prefix_token_id`) and the text encode/decode helpers that
training data (SFT) and evaluation must share, so both layers use the same first token.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from infir.data.cache import cached_artifact

log = logging.getLogger(__name__)

BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """Load a tokenizer directory without touching the network; names the path on failure."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"tokenizer.path: no such tokenizer directory: {path}")
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer.path: tokenizer at {path} has no eos token; documents cannot be separated")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int, out_dir: Path,
              split_digits: bool = False) -> None:
    """Train a byte-level BPE with BOS/EOS/PAD specials and save it as an HF tokenizer dir.

    ``split_digits``: every digit is its own token (as Llama-2's and Qwen's tokenizers do) instead of the
    digit runs BPE happens to merge ("420" -> "4", "20"; "583" -> "5", "8", "3"); numbers then share ten
    output tokens, which is what lets a small model learn to write coordinates and results (README, Multimodal).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                         if split_digits else byte_level)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=[BOS, EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   model_max_length=1_000_000)
    fast.save_pretrained(str(out_dir))


def trained_or_loaded_tokenizer(path: str | None, texts: list[str], vocab_size: int, min_frequency: int,
                                cache_root: str | Path, split_digits: bool = False
                                ) -> tuple[PreTrainedTokenizerBase, Path]:
    """Return (tokenizer, its directory): ``path`` if given, else a BPE cached by content hash."""
    if path:
        return load_tokenizer(path), Path(path)
    if vocab_size < 259:
        raise ValueError(f"tokenizer.vocab_size must be >= 259 (256 bytes + 3 specials), got {vocab_size}")
    import tokenizers

    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    spec = {"type": "byte_level_bpe", "vocab_size": vocab_size, "min_frequency": min_frequency,
            "text_sha256": digest.hexdigest(), "tokenizers": tokenizers.__version__}
    if split_digits:  # only when set: existing tokenizers keep their cache keys
        spec["split_digits"] = True
    directory = cached_artifact(cache_root, "tokenizer", spec,
                                lambda out: train_bpe(texts, vocab_size, min_frequency, out, split_digits))
    return load_tokenizer(directory), directory


def token_byte_lengths(tokenizer: PreTrainedTokenizerBase, size: int) -> np.ndarray:
    """UTF-8 bytes each token id stands for (special tokens: 0), for tokenizer-independent bits per byte.

    Byte-level BPE (ours, GPT-2, Llama-3) maps every byte to one alphabet character, so a
    token's byte count is its string length; other tokenizers fall back to decoding each id.
    """
    lengths = np.zeros(size, dtype=np.int64)
    special = set(tokenizer.all_special_ids)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    byte_level = backend is not None and "ByteLevel" in type(backend.decoder).__name__ + repr(backend.decoder)
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    for token_id, token in enumerate(vocab):
        if token_id in special or token is None:
            continue
        lengths[token_id] = len(token) if byte_level else len(tokenizer.decode([token_id]).encode("utf-8"))
    return lengths


def prefix_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token every SFT and evaluated sequence starts with, matching how the model saw documents begin.

    BOS when the tokenizer adds it by itself (Llama-3: Meta's models were trained with it); otherwise
    EOS, because our pre-training packs documents as ``text EOS text EOS``, so EOS is what precedes
    every document the model has seen.
    """
    bos = tokenizer.bos_token_id
    if bos is not None and tokenizer("a")["input_ids"][:1] == [bos]:
        return bos
    return tokenizer.eos_token_id


def encode_with_prefix(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """``[prefix] + tokens(text)`` per text, encoded in one batched call."""
    if not texts:
        return []
    prefix = prefix_token_id(tokenizer)
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [[prefix, *ids] for ids in encoded]


def decode_text(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> str:
    """Model text as written: special tokens dropped, no tokenization-space clean-up (it would alter code)."""
    return tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)
