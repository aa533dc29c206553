"""SFT data: conversations -> token ids with assistant-only labels -> packed, block-causal batches.

Format. Records hold ``messages`` (``[{"role", "content"}]``, roles system/user/assistant) or ShareGPT
``conversations`` (``[{"from": "system"|"human"|"gpt", "value"}]``); :func:`normalise_conversation` maps both
to ``messages`` and raises ``ValueError("<problem>: <detail>")`` for anything unusable, so the caller can
count skips by problem (:func:`encode_conversations` does).

Encoding. A sequence is ``[prefix_token_id] + tokens(rendered chat)``: the same first token generation uses
(EOS for our BPE, BOS for Llama-3), and never a second BOS (one the template renders is stripped, as the
instruct eval does). The assistant mask is computed by rendering prefixes, not with transformers'
``{% generation %}`` tracker: each turn's text is the difference between the chat rendered up to it and up
to the turn before (``add_generation_prompt=True`` before an assistant turn), and each piece is tokenised on
its own. So the tokens before an assistant reply are exactly the tokens of the prompt at inference, and any
prefix-stable template works, Llama-3 Instruct's (no generation tags) included. For our template the result
equals transformers' ``return_assistant_tokens_mask`` (tested).

Labels follow the training module's convention (``infir/training/module.py``): they are already shifted, so
``labels[t]`` is the target of position ``t``: the token at ``t + 1`` when that token belongs to an assistant
turn (content and the turn-ending EOS), else ``IGNORE_INDEX``. The final token (the last EOS) is therefore
never an input, and no position predicts across a sample boundary.

Over-long conversations are cut at a turn boundary, never inside a turn: the longest prefix that ends with
an assistant turn and fits ``max_len`` positions is kept (later turns dropped, counted as ``truncated``); a
conversation whose first assistant turn does not fit is dropped (``ConversationTooLong``, counted). A cut
reasoning trace without its final answer and EOS would teach the model to stop mid-answer.

Packing is best-fit decreasing (longest sample first, into the fullest pack it fits), done once, so the
number of packs and steps per epoch are fixed; each epoch then visits the packs in a (seed, epoch)-seeded
order. Inside a pack ``position_ids`` restart at 0 per sample, and the batch's ``segment_ids`` say which
sample each position belongs to; :mod:`infir.models.packed_attention` (shared with document-masked
pre-training) turns them into the attention kernel's block-causal form, so no attention crosses samples or
reaches padding. ``position_ids`` alone would also work for sdpa (transformers derives the same mask from
the position resets, ``find_packed_sequence_indices``; tested), but the explicit mask does not depend on it.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from infir.data.iteration import ShuffledEpochs
from infir.models.packed_attention import PAD_SEGMENT
from infir.models.tokenizer import prefix_token_id

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # the training module's ignore_index
# ShareGPT names (human/gpt) map onto ours
ROLE_NAMES = {"system": "system", "user": "user", "assistant": "assistant", "human": "user", "gpt": "assistant"}
_SAMPLES_LOGGED = 3

Sample = tuple[list[int], list[int]]  # (input_ids, labels), equal length


class ConversationTooLong(ValueError):
    """Even the first assistant turn does not fit ``max_len``; the conversation is dropped."""


# ------------------------------------------------------------------------------------------ format

def normalise_conversation(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """``messages`` of a ``messages`` or ShareGPT record, validated; ValueError names the problem.

    Rules: roles system/user/assistant (ShareGPT human/gpt map to user/assistant), string contents, system
    only as the first turn, non-empty assistant turns, at least one assistant turn, a user turn before it.
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"not a mapping: got {type(record).__name__}")
    key = "messages" if "messages" in record else "conversations" if "conversations" in record else None
    if key is None:
        raise ValueError(f"no conversation: record has neither 'messages' nor 'conversations' "
                         f"(keys {sorted(map(str, record))[:8]})")
    turns = record[key]
    if not isinstance(turns, Sequence) or isinstance(turns, str) or not turns:
        raise ValueError(f"empty conversation: '{key}' is missing, empty or not a list")
    messages: list[dict[str, str]] = []
    for index, turn in enumerate(turns):
        # role/content or ShareGPT from/value, under either key (both spellings occur in the wild)
        keys = turn.keys() if isinstance(turn, Mapping) else set()
        if not {"role", "from"} & keys or not {"content", "value"} & keys:
            raise ValueError(f"malformed turn: turn {index} needs 'role' (or 'from') and 'content' (or 'value')")
        role = turn["role"] if "role" in turn else turn["from"]
        content = turn["content"] if "content" in turn else turn["value"]
        if not isinstance(role, str) or role not in ROLE_NAMES:
            raise ValueError(f"unknown role: turn {index} has role {role!r} (allowed: {sorted(ROLE_NAMES)})")
        if not isinstance(content, str):
            raise ValueError(f"non-text content: turn {index} content is {type(content).__name__}")
        role = ROLE_NAMES[role]
        if role == "system" and index > 0:
            raise ValueError(f"misplaced system turn: turn {index} (system may only come first)")
        if role == "assistant":
            if not content.strip():
                raise ValueError(f"empty assistant turn: turn {index}")
            if not any(m["role"] == "user" for m in messages):
                raise ValueError(f"assistant before user: turn {index} answers no user turn")
        messages.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("no assistant turn: nothing to train on")
    return messages


# ---------------------------------------------------------------------------------------- encoding

def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    bos = tokenizer.bos_token
    return text[len(bos):] if bos and text.startswith(bos) else text  # the prefix token is added by us


def chat_segments(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
    """The rendered chat as ``(text, is_assistant)`` pieces, up to the end of the last assistant turn.

    Found by rendering prefixes, so a prompt piece is exactly what ``add_generation_prompt`` renders.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template; call infir.models.chat_template.ensure_chat_template")
    segments: list[tuple[str, bool]] = []
    done = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:index], True)
        full = _render(tokenizer, messages[: index + 1], False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise ValueError(f"template not prefix-stable: rendering turn {index} does not extend the turns before")
        segments += [(prompt[len(done):], False), (full[len(prompt):], True)]
        done = full
    return [(text, assistant) for text, assistant in segments if text]


def _encode(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], max_len: int,
            prefix: int) -> tuple[list[int], list[int], bool]:
    """(input_ids, labels, truncated) with the turn-boundary truncation described in the module docstring."""
    tokens, assistant, turn_ends = [prefix], [False], []
    pieces = chat_segments(tokenizer, messages)
    encoded = tokenizer([text for text, _ in pieces], add_special_tokens=False)["input_ids"]
    if not any(is_assistant for _, is_assistant in pieces):
        raise ValueError("no assistant turn: nothing to train on")
    for (_, is_assistant), ids in zip(pieces, encoded):
        tokens += ids
        assistant += [is_assistant] * len(ids)
        if is_assistant:
            turn_ends.append(len(tokens))
    fitting = [end for end in turn_ends if end - 1 <= max_len]  # n tokens give n - 1 positions
    if not fitting:
        raise ConversationTooLong(f"too long: the first assistant turn ends at token {turn_ends[0]}, "
                                  f"max_len is {max_len} positions")
    end = fitting[-1]
    labels = [tokens[i + 1] if assistant[i + 1] else IGNORE_INDEX for i in range(end - 1)]
    return tokens[: end - 1], labels, end != turn_ends[-1]


def encode_conversation(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]],
                        max_len: int) -> Sample:
    """``(input_ids, labels)`` of one normalised conversation (labels shifted, assistant tokens only).

    Raises :class:`ConversationTooLong` when not even the first assistant turn fits ``max_len``.
    """
    input_ids, labels, _ = _encode(tokenizer, messages, max_len, prefix_token_id(tokenizer))
    return input_ids, labels


@dataclass
class EncodedConversations:
    """Samples plus what was dropped (by problem) or cut, for the run's log and manifest."""

    samples: list[Sample]
    skipped: dict[str, int] = field(default_factory=dict)
    truncated: int = 0

    @property
    def tokens(self) -> int:
        return sum(len(ids) for ids, _ in self.samples)

    @property
    def trained_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for _, labels in self.samples for label in labels)


def encode_conversations(tokenizer: PreTrainedTokenizerBase, records: Sequence[Mapping[str, Any]], max_len: int,
                         source: str = "sft") -> EncodedConversations:
    """Normalise and encode ``records``; unusable ones are counted by problem and logged, not raised."""
    prefix = prefix_token_id(tokenizer)
    result = EncodedConversations([])
    for index, record in enumerate(records):
        try:
            input_ids, labels, cut = _encode(tokenizer, normalise_conversation(record), max_len, prefix)
        except ValueError as exc:
            reason = str(exc).split(":")[0]
            result.skipped[reason] = result.skipped.get(reason, 0) + 1
            if sum(result.skipped.values()) <= _SAMPLES_LOGGED:
                log.warning("%s: skipping conversation %d: %s", source, index, exc)
            continue
        result.samples.append((input_ids, labels))
        result.truncated += cut
    if result.skipped or result.truncated:
        log.warning("%s: kept %d of %d conversations (%d cut at a turn boundary); skipped %s", source,
                    len(result.samples), len(records), result.truncated, result.skipped)
    if not result.samples:
        raise ValueError(f"{source}: no usable conversation (skipped {result.skipped})")
    return result


# ----------------------------------------------------------------------------------------- packing

@dataclass(frozen=True)
class PackedSequence:
    """``seq_len`` positions holding whole samples, then padding (segment ``PAD_SEGMENT``, label ignored)."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    segment_ids: list[int]
    samples: tuple[int, ...]  # indices into the packed sample list, in segment order


def pack(samples: Sequence[Sample], seq_len: int, pad_id: int = 0) -> list[PackedSequence]:
    """Best-fit-decreasing packing of whole samples into sequences of exactly ``seq_len`` positions.

    Deterministic (ties broken by sample index). Padding positions count 0, 1, ... like a sample of their
    own, so position-based boundary detection (flash-attention) never joins them to the last sample.
    """
    order = sorted(range(len(samples)), key=lambda i: (-len(samples[i][0]), i))
    bins: list[list[int]] = []
    by_free: dict[int, list[int]] = {}  # free positions -> bins with that much room (a stack)
    free_sizes: list[int] = []  # sorted distinct keys of by_free
    for i in order:
        size = len(samples[i][0])
        if not 0 < size <= seq_len or size != len(samples[i][1]):
            raise ValueError(f"sample {i}: {size} input ids / {len(samples[i][1])} labels; need equal lengths "
                             f"in 1..{seq_len} (encode with max_len <= seq_len)")
        slot = bisect.bisect_left(free_sizes, size)
        if slot < len(free_sizes):
            free = free_sizes[slot]
            b = by_free[free].pop()
            if not by_free[free]:
                del by_free[free], free_sizes[slot]
        else:
            free, b = seq_len, len(bins)
            bins.append([])
        bins[b].append(i)
        left = free - size
        if left:
            if left not in by_free:
                by_free[left] = []
                bisect.insort(free_sizes, left)
            by_free[left].append(b)
    packs = []
    for members in bins:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        segments: list[int] = []
        for segment, i in enumerate(members):
            sample_ids, sample_labels = samples[i]
            ids += sample_ids
            labels += sample_labels
            positions += range(len(sample_ids))
            segments += [segment] * len(sample_ids)
        pad = seq_len - len(ids)
        packs.append(PackedSequence(ids + [pad_id] * pad, labels + [IGNORE_INDEX] * pad,
                                    positions + list(range(pad)), segments + [PAD_SEGMENT] * pad, tuple(members)))
    return packs


def collate(packed: Sequence[PackedSequence]) -> dict[str, torch.Tensor]:
    """Stack packs into ``input_ids``, ``labels``, ``position_ids`` and ``segment_ids`` (B, T); the training
    module turns the segments into the attention kernel's mask (:mod:`infir.models.packed_attention`)."""
    if len({len(p.input_ids) for p in packed}) != 1:
        raise ValueError("collate: packed sequences differ in length; pack them with one seq_len")
    return {"input_ids": torch.tensor([p.input_ids for p in packed], dtype=torch.long),
            "labels": torch.tensor([p.labels for p in packed], dtype=torch.long),
            "position_ids": torch.tensor([p.position_ids for p in packed], dtype=torch.long),
            "segment_ids": torch.tensor([p.segment_ids for p in packed], dtype=torch.long)}


# ------------------------------------------------------------------------------------------ epochs

class SFTEpochs(ShuffledEpochs):
    """Packed batches, epoch after epoch, each epoch in its own (seed, epoch)-seeded pack order.

    The samples are packed once (:func:`pack`); :class:`~infir.data.iteration.ShuffledEpochs` does the
    ordering, rank split and exact resume. Use it with ``DataLoader(dataset, batch_size=None,
    num_workers=0 or 1)``: it yields ready batches.
    """

    def __init__(self, samples: Sequence[Sample], seq_len: int, seed: int, batch_size: int = 1, epochs: int = 1,
                 pad_id: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.packs = pack(samples, seq_len, pad_id)
        self.seq_len = seq_len
        super().__init__(self.packs, collate, seed, batch_size=batch_size, epochs=epochs, rank=rank,
                         world_size=world_size, namespace="sft-epochs")

    def batch_packs(self, epoch: int, index: int) -> list[PackedSequence]:
        """The packs of step ``index`` of ``epoch`` on this rank."""
        return self.batch_items(epoch, index)
