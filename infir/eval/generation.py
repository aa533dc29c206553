"""Batched generation for evaluation: our own KV-cached decode loop instead of HF ``generate``.

Evaluation decodes thousands of prompts; one prompt at a time leaves the hardware idle, and
HF's batched ``generate`` keeps finished rows in the batch until the last one is done. Here:

* prompts are sorted by token length (longest first) and batched, outputs returned in input order;
* each batch is prefilled in groups of similar length (little padding compute), and the groups'
  keys/values are copied into one preallocated, left-padded KV buffer, so decoding writes each
  new token in place instead of re-concatenating the cache every step;
* rows that are done (EOS, a stop string, the token budget) are dropped from the batch and the
  cache, and padding columns no remaining row needs are cut from the left;
* stop strings are matched on incrementally decoded text, so one spanning a token boundary is
  found as soon as it is complete.

Every sequence starts with :func:`infir.models.tokenizer.prefix_token_id` (BOS where the tokenizer adds it
itself, else EOS, our document separator); prompt text is otherwise encoded without special tokens, so a
tokenizer that adds BOS by itself (Llama-3) does not get two. Assumes a full-attention decoder (the Llama family).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, PreTrainedTokenizerBase
from transformers.cache_utils import Cache, DynamicLayer

from infir.models.tokenizer import decode_text, encode_with_prefix, prefix_token_id

log = logging.getLogger(__name__)

_DETOKENIZE_CONTEXT = 5  # prompt tokens decoded alongside the completion so its first piece gets the right text


@dataclass(frozen=True)
class GenerationConfig:
    """How to decode; validated on construction so a bad eval config fails before any model work."""

    max_new_tokens: int = 256
    do_sample: bool = False  # greedy when False
    temperature: float = 1.0
    top_p: float = 1.0
    num_samples: int = 1  # completions per prompt (pass@k needs n > 1 with sampling)
    stop: tuple[str, ...] = ()  # generation for a row ends once its text contains one; the output is cut before it
    batch_size: int = 16  # rows (prompt x sample) decoded together
    seed: int = 0
    max_prompt_tokens: int | None = None  # longer prompts are left-truncated; default: model context - max_new_tokens

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            raise ValueError(f"stop must be a sequence of strings, not the string {self.stop!r}")
        object.__setattr__(self, "stop", tuple(self.stop))  # lists from YAML configs
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.do_sample and not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < 2:
            raise ValueError(f"max_prompt_tokens must be >= 2 (prefix token + 1), got {self.max_prompt_tokens}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"stop must hold non-empty strings, got {self.stop!r}")


class _Detokenizer:
    """Incremental decoding with prefix/read offsets (as in TGI/vLLM): O(1) work per token.

    Text is appended only once it is final: the decoded window grew and does not end in U+FFFD,
    i.e. no UTF-8 character is split across byte-level tokens. The last few prompt tokens seed
    the window so the first completion token decodes as it would after the prompt.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, context: Sequence[int]) -> None:
        self._tokenizer = tokenizer
        self._ids = list(context[-_DETOKENIZE_CONTEXT:])
        self._prefix = 0
        self._read = len(self._ids)
        self._prefix_text = decode_text(tokenizer, self._ids)
        self.text = ""

    def push(self, ids: Sequence[int], final: bool = False) -> None:
        self._ids.extend(ids)
        new = decode_text(self._tokenizer, self._ids[self._prefix:])
        if len(new) > len(self._prefix_text) and (final or not new.endswith("\ufffd")):
            self.text += new[len(self._prefix_text):]
            self._prefix, self._read = self._read, len(self._ids)
            self._prefix_text = decode_text(self._tokenizer, self._ids[self._prefix:self._read])


@dataclass
class _Row:
    """One sequence being decoded: its output slot, prompt ids and generated tokens."""

    slot: int
    prompt: list[int]
    tokens: list[int] = field(default_factory=list)
    detokenizer: _Detokenizer | None = None
    result: str | None = None
    finished: bool = False  # ended by EOS or a stop string (else by the token budget)


def _find_stop(text: str, start: int, stops: tuple[str, ...]) -> int:
    """Earliest index >= ``start`` where any stop string begins, or -1."""
    hits = [i for i in (text.find(s, start) for s in stops) if i >= 0]
    return min(hits) if hits else -1


def _end_token_ids(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                   stops: Sequence[str] = ()) -> frozenset[int]:
    """The tokenizer's EOS, any the model's generation config adds (e.g. Llama-3 ``<|eot_id|>``), and every stop
    string that is one special token of this tokenizer (e.g. ``<|im_end|>``): decoded text drops special tokens,
    so such a stop is matched by id, as lm-eval matches it in text decoded with specials."""
    ids = {tokenizer.eos_token_id}
    extra = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if extra is not None:
        ids.update([extra] if isinstance(extra, int) else extra)
    special = set(tokenizer.all_special_tokens) | set(tokenizer.get_added_vocab())
    ids.update(tokenizer.convert_tokens_to_ids(s) for s in stops if s in special)
    return frozenset(i for i in ids if i is not None)


def _next_tokens(logits: torch.Tensor, config: GenerationConfig, generator: torch.Generator | None) -> torch.Tensor:
    """Greedy argmax, or temperature + top-p (nucleus) sampling from ``generator``; (B, V) -> (B,)."""
    if not config.do_sample:
        return logits.argmax(-1)
    scores = logits.float() / config.temperature
    if config.top_p < 1.0:
        sorted_scores, order = scores.sort(-1, descending=True)
        probs = sorted_scores.softmax(-1)
        # drop a token once the tokens ranked above it already hold top_p of the mass (the top one always stays)
        drop = (probs.cumsum(-1) - probs) >= config.top_p
        scores = scores.scatter(-1, order, sorted_scores.masked_fill(drop, float("-inf")))
    return torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(-1)


def _check_full_attention(model: torch.nn.Module) -> None:
    """The preallocated KV buffer keeps every position: sliding-window or linear-attention layers would be wrong."""
    layer_types = set(getattr(model.config, "layer_types", None) or ["full_attention"])
    if layer_types != {"full_attention"} or getattr(model.config, "sliding_window", None) is not None:
        raise ValueError(f"generate: only full-attention decoders are supported (layer types {sorted(layer_types)}, "
                         f"sliding_window={getattr(model.config, 'sliding_window', None)})")


def _max_prompt_tokens(model: torch.nn.Module, config: GenerationConfig) -> int:
    if config.max_prompt_tokens is not None:
        return config.max_prompt_tokens
    context = getattr(model.config, "max_position_embeddings", None)
    if context is None:
        raise ValueError("max_prompt_tokens must be set: the model config has no max_position_embeddings")
    if context - config.max_new_tokens < 2:
        raise ValueError(f"max_new_tokens={config.max_new_tokens} leaves no room for a prompt in the model's "
                         f"{context}-token context")
    return context - config.max_new_tokens


class _BufferLayer(DynamicLayer):
    """One layer's keys/values in a preallocated (rows, heads, capacity, dim) buffer.

    ``update`` writes the new token in place instead of ``torch.cat``-ing the whole cache every
    step (a full copy per token and layer); ``keys``/``values`` are views of the live span
    ``[start, end)``, where ``start`` moves right when every remaining row's left padding can be
    cut. Rows are selected (finished rows dropped) by indexing the buffer.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, end: int) -> None:
        super().__init__()
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        self._keys, self._values, self._start, self._end = keys, values, 0, end
        self._sync()

    def _sync(self) -> None:
        self.keys = self._keys[:, :, self._start:self._end]
        self.values = self._values[:, :, self._start:self._end]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        n = key_states.shape[-2]
        self._keys[:, :, self._end:self._end + n] = key_states
        self._values[:, :, self._end:self._end + n] = value_states
        self._end += n
        self._sync()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys, self._values = self._keys[indices], self._values[indices]
        self._sync()

    def drop_left(self, start: int) -> None:
        self._start = start
        self._sync()


def _prefill_groups(lengths: list[int], max_waste: float = 0.25) -> list[slice]:
    """Split rows sorted longest first into runs whose left padding is at most ``max_waste`` of their tokens."""
    groups, first = [], 0
    for i in range(1, len(lengths) + 1):
        if i == len(lengths) or (i - first + 1) * lengths[first] > (1 + max_waste) * sum(lengths[first:i + 1]):
            groups.append(slice(first, i))
            first = i
    return groups


def _prefill(model: torch.nn.Module, prompts: list[list[int]], copies: int, capacity: int, pad_id: int,
             device: torch.device) -> tuple[Cache, torch.Tensor]:
    """Run the prompts (sorted longest first) through the model; return a buffer cache and last-token logits.

    Prompts are prefilled in groups of similar length (little padding compute), then their keys
    and values are copied right-aligned into one left-padded buffer of ``capacity`` positions,
    each prompt fanned out to ``copies`` rows.
    """
    width = len(prompts[0])
    rows = len(prompts) * copies
    buffers: list[tuple[torch.Tensor, torch.Tensor]] = []
    logits = []
    for group in _prefill_groups([len(p) for p in prompts]):
        batch = prompts[group]
        group_width = len(batch[0])
        input_ids = torch.full((len(batch), group_width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), group_width), dtype=torch.long)
        for i, prompt in enumerate(batch):  # left padding: the last prompt token is always in the last column
            input_ids[i, group_width - len(prompt):] = torch.tensor(prompt)
            mask[i, group_width - len(prompt):] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp_(min=0)  # real tokens count from 0 whatever the padding
        cache = DynamicCache(config=model.config)
        padded = len(batch[-1]) < group_width  # no padding: no mask, so SDPA can use its causal kernel
        out = model(input_ids=input_ids, attention_mask=mask if padded else None, position_ids=positions,
                    past_key_values=cache, use_cache=True, logits_to_keep=1)
        logits.append(out.logits[:, -1])
        row_span = slice(group.start * copies, group.stop * copies)
        for layer_idx, layer in enumerate(cache.layers):
            if not buffers[layer_idx:]:
                shape = (rows, *layer.keys.shape[1:2], capacity, layer.keys.shape[-1])
                buffers.append((layer.keys.new_zeros(shape), layer.values.new_zeros(shape)))
            keys, values = buffers[layer_idx]
            left = width - group_width
            keys[row_span, :, left:width] = layer.keys.repeat_interleave(copies, dim=0)
            values[row_span, :, left:width] = layer.values.repeat_interleave(copies, dim=0)
        del cache, out
    # zero the padding slots (never attended): no stray inf/NaN from fully masked pad queries can leak in
    pads = torch.tensor([width - len(p) for p in prompts], device=device).repeat_interleave(copies)
    is_pad = (torch.arange(capacity, device=device)[None, :] < pads[:, None])[:, None, :, None]
    for keys, values in buffers:
        keys.masked_fill_(is_pad, 0)
        values.masked_fill_(is_pad, 0)
    cache = Cache(layers=[_BufferLayer(keys, values, end=width) for keys, values in buffers])
    return cache, torch.cat(logits).repeat_interleave(copies, dim=0)


def _decode_batch(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, rows: list[_Row], copies: int,
                  config: GenerationConfig, generator: torch.Generator | None, end_ids: frozenset[int],
                  vocab: int) -> None:
    """Prefill the distinct prompts once, fan out ``copies`` rows each, then decode until every row is done."""
    device = next(model.parameters()).device
    width = len(rows[0].prompt)
    cache, logits = _prefill(model, [row.prompt for row in rows[::copies]], copies, width + config.max_new_tokens,
                             prefix_token_id(tokenizer), device)
    logits = logits[:, :vocab]
    pads = [width - len(row.prompt) for row in rows]  # left padding per row
    # Attention mask over the buffer (True = attend): SDPA takes it as is; other attention kernels get the
    # 2D form and build their own.
    mask = torch.ones((len(rows), width + config.max_new_tokens), dtype=torch.bool)
    for i, pad in enumerate(pads):
        mask[i, :pad] = False
    mask = mask.to(device)
    sdpa = getattr(model.config, "_attn_implementation", None) == "sdpa"
    next_position = torch.tensor([[len(row.prompt)] for row in rows], device=device)
    start = 0  # buffer columns before this are padding for every remaining row

    stops = config.stop
    longest_stop = max((len(s) for s in stops), default=0)
    active = list(range(len(rows)))
    if stops:
        for row in rows:
            row.detokenizer = _Detokenizer(tokenizer, row.prompt)
    for step in range(config.max_new_tokens):
        tokens = _next_tokens(logits, config, generator)
        keep: list[int] = []
        for i, token in enumerate(tokens.tolist()):
            row = rows[active[i]]
            if token in end_ids:
                row.finished = True
                continue
            row.tokens.append(token)
            if stops:
                checked = len(row.detokenizer.text)
                row.detokenizer.push([token])
                cut = _find_stop(row.detokenizer.text, max(0, checked - longest_stop + 1), stops)
                if cut >= 0:
                    row.result = row.detokenizer.text[:cut]
                    row.finished = True
                    continue
            keep.append(i)
        if not keep or step == config.max_new_tokens - 1:
            break
        if len(keep) < len(active):  # finished rows leave the batch and stop costing work
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            tokens, mask, next_position = tokens[index], mask[index], next_position[index]
            active = [active[i] for i in keep]
            if min(pads[r] for r in active) > start:
                start = min(pads[r] for r in active)
                for layer in cache.layers:
                    layer.drop_left(start)
        live = mask[:, start:width + step + 1]
        logits = model(input_ids=tokens[:, None], attention_mask=live[:, None, None, :] if sdpa else live.long(),
                       position_ids=next_position, past_key_values=cache, use_cache=True).logits[:, -1, :vocab]
        next_position = next_position + 1

    for row in rows:
        if row.result is not None:
            continue
        if row.detokenizer is None:
            row.detokenizer = _Detokenizer(tokenizer, row.prompt)
            row.detokenizer.push(row.tokens, final=True)
        else:
            row.detokenizer.push([], final=True)
        text = row.detokenizer.text
        cut = _find_stop(text, 0, stops) if stops else -1
        row.result = text[:cut] if cut >= 0 else text


def generate(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
             config: GenerationConfig, progress: bool = False) -> list[list[str]]:
    """Per prompt, ``config.num_samples`` completions: the text after the prompt, cut before the first stop string.

    EOS (the tokenizer's, or the model generation config's) also ends a row. Outputs follow the
    order of ``prompts``. Deterministic for a given ``config.seed`` and inputs.
    """
    return [[text for text, _ in row] for row in generate_with_endings(model, tokenizer, prompts, config, progress)]


def generate_with_endings(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                          config: GenerationConfig, progress: bool = False) -> list[list[tuple[str, bool]]]:
    """As :func:`generate`, each completion paired with whether it finished (EOS or a stop string) rather than
    running out of ``max_new_tokens``: data synthesis drops truncated replies, evaluation scores them."""
    if not prompts:
        return []
    _check_full_attention(model)
    limit = _max_prompt_tokens(model, config)
    encoded = encode_with_prefix(tokenizer, prompts)
    truncated = sum(len(ids) > limit for ids in encoded)
    if truncated:
        log.warning("generate: %d of %d prompts are longer than %d tokens and were left-truncated",
                    truncated, len(encoded), limit)
        encoded = [ids if len(ids) <= limit else [ids[0], *ids[len(ids) - limit + 1:]] for ids in encoded]

    # greedy samples are identical: decode once and copy
    copies = config.num_samples if config.do_sample else 1
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))  # longest first: little padding per batch
    per_batch = max(1, config.batch_size // copies)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.seed) if config.do_sample else None
    end_ids = _end_token_ids(model, tokenizer, config.stop)
    vocab = len(tokenizer)  # logits beyond the tokenizer (vocab padding) are never valid outputs
    results: list[list[tuple[str, bool]]] = [[] for _ in prompts]

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), tqdm(total=len(prompts), desc="generate", unit="prompt",
                                          disable=not progress) as bar:
            for start in range(0, len(order), per_batch):
                batch = order[start:start + per_batch]
                rows = [_Row(slot=i, prompt=encoded[i]) for i in batch for _ in range(copies)]
                _decode_batch(model, tokenizer, rows, copies, config, generator, end_ids, vocab)
                for row in rows:
                    results[row.slot].append((row.result, row.finished))
                bar.update(len(batch))
    finally:
        model.train(was_training)
    if copies < config.num_samples:
        results = [r * config.num_samples for r in results]
    return results
