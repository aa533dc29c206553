"""Next-token cross-entropy from hidden states, never materialising the full-vocabulary logits.

At the Llama-3.2-1B shape the plain loss holds ``batch x seq x 128,256`` logits (bf16) plus their fp32 copy
and its gradient: 4 x 4096 x 128,256 x (2 + 4 + 4) bytes = 21 GB at micro-batch 4, more than the model,
its gradients and AdamW state together. Here the LM head runs on ``chunk_tokens`` positions at a time;
each chunk's logits are used for its loss and, in the same pass, for the gradients with respect to the
hidden states and the head weight (the softmax minus the one-hot target), then freed. Backward only
scales those stored gradients, so the head's matmuls run once forward and twice for gradients, as in
the plain loss (no recomputation), and peak extra memory is one chunk of logits. Liger-Kernel's fused
linear cross-entropy works the same way with Triton kernels; this version is plain PyTorch and runs on
any device.

Numerics follow the plain path (``lm_head`` under autocast, then fp32 cross-entropy): each chunk's logits
are computed in the autocast dtype (or the inputs' dtype without autocast), rounded to it, and then taken
to fp32 (fp64 inputs: fp64) for the softmax, so loss and gradients agree with the plain loss to fp32 rounding.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


def _compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    device = tensor.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else tensor.dtype


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, chunk_tokens: int,
                reduction: str) -> torch.Tensor:
        dtype = _compute_dtype(hidden)
        accumulate = torch.promote_types(dtype, torch.float32)  # fp32 softmax (fp64 stays fp64)
        with torch.autocast(hidden.device.type, enabled=False):
            h, w = hidden.to(dtype), weight.to(dtype)
            valid_count = (labels != IGNORE_INDEX).sum()
            scale = 1.0 / valid_count.clamp(min=1).to(accumulate) if reduction == "mean" else 1.0
            needs_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
            grad_hidden = torch.empty_like(hidden) if needs_grad else None
            grad_weight = torch.zeros(weight.shape, dtype=accumulate, device=weight.device) if needs_grad else None
            total = torch.zeros((), dtype=accumulate, device=h.device)
            for start in range(0, h.shape[0], chunk_tokens):
                rows = slice(start, start + chunk_tokens)
                logits = (h[rows] @ w.T).to(accumulate)
                target = labels[rows]
                valid = target != IGNORE_INDEX
                safe_target = target.clamp(min=0)
                log_norm = torch.logsumexp(logits, dim=-1)
                target_logit = logits.gather(1, safe_target[:, None])[:, 0]
                total += torch.where(valid, log_norm - target_logit, 0.0).sum()
                if not needs_grad:
                    continue
                grad_logits = torch.softmax(logits, dim=-1)  # d loss / d logits = softmax - one_hot(target)
                grad_logits.scatter_add_(1, safe_target[:, None], torch.full_like(target_logit, -1.0)[:, None])
                grad_logits *= (valid.to(accumulate) * scale)[:, None]
                grad_logits = grad_logits.to(dtype)
                grad_hidden[rows] = (grad_logits @ w).to(hidden.dtype)
                grad_weight += (grad_logits.T @ h[rows]).to(accumulate)
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype) if needs_grad else None)
        if reduction == "mean":  # 0/0 = nan with no target, as F.cross_entropy gives
            return total / valid_count.to(accumulate)
        return total

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        return (grad_hidden * grad_output if ctx.needs_input_grad[0] else None,
                grad_weight * grad_output if ctx.needs_input_grad[1] else None, None, None, None)


def chunked_next_token_loss(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                            chunk_tokens: int = 4096, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of ``hidden @ weight.T`` against ``labels`` (``IGNORE_INDEX`` skipped), ``chunk_tokens``
    positions at a time. ``hidden`` is ``(..., d)``, ``labels`` the matching ``(...)``.

    ``reduction``: ``mean`` (over non-ignored targets) and ``sum`` are differentiable; ``none`` (per-position
    losses, 0 at ignored ones, as ``F.cross_entropy`` gives) is for evaluation and refuses gradients.
    """
    if chunk_tokens < 1:
        raise ValueError(f"model.loss_chunk_tokens must be >= 1, got {chunk_tokens}")
    flat_hidden, flat_labels = hidden.reshape(-1, hidden.shape[-1]), labels.reshape(-1)
    if reduction == "none":
        if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
            raise ValueError("chunked_next_token_loss: reduction='none' is for evaluation (no gradients)")
        dtype = _compute_dtype(hidden)
        pieces = []
        for start in range(0, flat_hidden.shape[0], chunk_tokens):
            logits = (flat_hidden[start:start + chunk_tokens].to(dtype) @ weight.to(dtype).T)
            logits = logits.to(torch.promote_types(dtype, torch.float32))
            pieces.append(torch.nn.functional.cross_entropy(logits, flat_labels[start:start + chunk_tokens],
                                                            ignore_index=IGNORE_INDEX, reduction="none"))
        return torch.cat(pieces)
    if reduction not in ("mean", "sum"):
        raise ValueError(f"chunked_next_token_loss: unknown reduction {reduction!r}")
    return _ChunkedLinearCrossEntropy.apply(flat_hidden, weight, flat_labels, int(chunk_tokens), reduction)
