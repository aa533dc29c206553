"""Log-likelihood scoring: continuation log-probs (multiple-choice options) and per-document NLL.

Sequences start with the same prefix token as generation (:func:`prefix_token_id`: BOS where the tokenizer
adds it, else EOS), so the first real token is always predicted from something. Batches are
right-padded and run without an attention mask: under causal attention padding at the end
cannot change the positions before it, and SDPA keeps its fast ``is_causal`` kernel.

Logits are only formed where a score is needed: the base model's hidden states are gathered
at the scored positions and pushed through the output head in chunks, in float32, so a 128k
vocabulary never materialises a (batch, length, vocab) tensor. This assumes the causal LM
computes ``logits = output_embeddings(base_model(...).last_hidden_state)`` (true for Llama;
not for models with logit soft-capping or scaling).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from infir.models.tokenizer import prefix_token_id

_HEAD_CHUNK = 1024  # scored positions per output-head matmul: bounds the float32 logits to chunk x vocab


def _model_context(model: torch.nn.Module) -> int:
    context = getattr(model.config, "max_position_embeddings", None)
    return int(context) if context else 1 << 30


def _score_batch(model: torch.nn.Module, sequences: list[list[int]], scored: list[int]) -> list[torch.Tensor]:
    """Per sequence, log P(token t | tokens < t) for its last ``scored`` tokens (float32, on CPU).

    Sequences are right-padded; position t's hidden state predicts token t + 1.
    """
    device = next(model.parameters()).device
    width = max(len(s) for s in sequences) - 1
    input_ids = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        input_ids[i, :len(seq) - 1] = torch.tensor(seq[:-1])
    hidden = model.base_model(input_ids=input_ids.to(device), use_cache=False).last_hidden_state
    rows = torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in enumerate(scored)])
    cols = torch.cat([torch.arange(len(seq) - 1 - n, len(seq) - 1) for seq, n in zip(sequences, scored)])
    targets = torch.cat([torch.tensor(seq[len(seq) - n:], dtype=torch.long) for seq, n in zip(sequences, scored)])
    picked = hidden[rows.to(device), cols.to(device)]
    head = model.get_output_embeddings()
    out = []
    for start in range(0, len(targets), _HEAD_CHUNK):
        logits = head(picked[start:start + _HEAD_CHUNK]).float()
        chunk_targets = targets[start:start + _HEAD_CHUNK].to(device)
        out.append(logits.log_softmax(-1).gather(-1, chunk_targets[:, None]).squeeze(-1).cpu())
    return list(torch.cat(out).split(scored))


def _run_batches(model: torch.nn.Module, sequences: list[list[int]], scored: list[int],
                 batch_size: int) -> list[torch.Tensor]:
    """Score all sequences longest first (similar lengths share a batch), eval mode, results in input order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    results: list[torch.Tensor | None] = [None] * len(sequences)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = [i for i in order[start:start + batch_size] if scored[i] > 0]
                if not batch:
                    continue
                for i, lp in zip(batch, _score_batch(model, [sequences[i] for i in batch], [scored[i] for i in batch])):
                    results[i] = lp
    finally:
        model.train(was_training)
    return [r if r is not None else torch.zeros(0) for r in results]


def split_pair(tokenizer: PreTrainedTokenizerBase, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(prefix + context tokens, continuation tokens), the boundary handled as lm-evaluation-harness does.

    Trailing whitespace of the context moves to the continuation (BPE merges a space with the
    following word); the whole string is encoded once and the continuation is every token after
    the context's own token count, so merges across the boundary are scored as the model sees them.
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    n_context = len(tokenizer(context, add_special_tokens=False)["input_ids"]) if context else 0
    return [prefix_token_id(tokenizer), *whole[:n_context]], whole[n_context:]


def continuation_logprobs(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                          pairs: Sequence[tuple[str, str]], batch_size: int = 16) -> list[tuple[float, int]]:
    """Per (context, continuation): (sum of log P(continuation tokens | context), number of continuation tokens).

    Contexts longer than the model's context window are left-truncated; a continuation that
    alone does not fit raises ``ValueError``.
    """
    limit = _model_context(model) + 1  # inputs are a sequence minus its last token
    sequences, scored = [], []
    for i, (context, continuation) in enumerate(pairs):
        context_ids, continuation_ids = split_pair(tokenizer, context, continuation)
        if len(continuation_ids) >= limit:
            raise ValueError(f"pairs[{i}]: continuation of {len(continuation_ids)} tokens does not fit the "
                             f"model context of {limit - 1}")
        sequences.append((context_ids + continuation_ids)[-limit:])
        scored.append(len(continuation_ids))
    logprobs = _run_batches(model, sequences, scored, batch_size)
    return [(float(lp.double().sum()), n) for lp, n in zip(logprobs, scored)]


def document_nll(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
                 max_length: int, batch_size: int = 8) -> list[tuple[float, int, int]]:
    """Per text: (total NLL in nats, number of predicted tokens, number of UTF-8 bytes).

    The prefix token is prepended, so every text token is predicted. A text longer than
    ``max_length`` tokens is cut into non-overlapping windows of ``max_length`` inputs, each
    predicting the next ``max_length`` tokens from inside its own window only: tokens early in
    a later window see less context than a sliding window would give them, so long-document
    NLL is slightly pessimistic, at a fraction of the compute. Bits per byte:
    ``nll / ln(2) / bytes``.
    """
    if not 1 <= max_length <= _model_context(model):
        raise ValueError(f"max_length must be in [1, {_model_context(model)}], got {max_length}")
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    prefix = prefix_token_id(tokenizer)
    windows, owner = [], []
    for doc, ids in enumerate(encoded):
        seq = [prefix, *ids]
        for start in range(0, len(seq) - 1, max_length):
            windows.append(seq[start:start + max_length + 1])  # max_length inputs + the token after them
            owner.append(doc)
    logprobs = _run_batches(model, windows, [len(w) - 1 for w in windows], batch_size)
    totals = [0.0] * len(encoded)
    for doc, lp in zip(owner, logprobs):
        totals[doc] -= float(lp.double().sum())
    return [(total, len(ids), len(text.encode("utf-8"))) for total, ids, text in zip(totals, encoded, texts)]
