"""Attention for packed sequences: one mechanism for SFT conversations and document-masked pre-training.

A packed batch says which document (segment) each position belongs to with ``segment_ids`` (B, T): equal ids
attend causally to each other, different ids never do, and ``PAD_SEGMENT`` positions (padding) see only
themselves, so no softmax row is empty. ``position_ids`` restart at 0 in every segment. The data builds these
two tensors (SFT's packer, the pre-training windows); :func:`packed_model_inputs` turns them into what the
configured attention kernel takes, on the device, so no (T x T) mask travels through the data loader:

- ``flash_attention_2``: one ``(1, B*T)`` row with ``position_ids`` and no mask; transformers finds the
  documents from the position resets and calls flash-attention's varlen kernel (``_is_packed_sequence``).
- ``flex_attention``: a FlexAttention ``BlockMask`` built from the segment ids (sparse: fully masked tiles are
  skipped; GPU only for training, PyTorch has no FlexAttention backward on CPU).
- ``sdpa``: a boolean ``(B, 1, T, T)`` mask (True = attend) handed to ``scaled_dot_product_attention``.
- ``eager``: the same mask additive (0 = attend, ``finfo.min`` = blocked), the form eager attention needs.

Transformers 5.23 hands a 4D tensor or a ``BlockMask`` given as ``attention_mask`` to the kernel unchanged
(``masking_utils._preprocess_mask_arguments``); flash-attention must get no 4D mask, which it would read as a
2D padding mask.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

PAD_SEGMENT = -1  # segment id of padding positions


def document_positions(segment_ids: torch.Tensor) -> torch.Tensor:
    """Position ids that restart at 0 wherever the segment id changes (per row of a ``(B, T)`` tensor)."""
    segments = segment_ids if segment_ids.dim() == 2 else segment_ids.unsqueeze(0)
    length = segments.shape[-1]
    index = torch.arange(length, device=segments.device).expand_as(segments)
    starts = torch.ones_like(segments, dtype=torch.bool)
    starts[:, 1:] = segments[:, 1:] != segments[:, :-1]
    start_index = torch.where(starts, index, torch.zeros_like(index)).cummax(dim=-1).values
    positions = index - start_index
    return positions if segment_ids.dim() == 2 else positions[0]


def block_causal_mask(segment_ids: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``(batch, 1, T, T)`` mask: causal within a segment, nothing across segments or to padding.

    Bool (True = attend) by default, the form sdpa takes; with a float ``dtype`` additive (0 = attend,
    ``finfo(dtype).min`` = blocked), the form eager attention needs. Padding rows see only themselves.
    """
    segments = segment_ids if segment_ids.dim() == 2 else segment_ids.unsqueeze(0)
    length = segments.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segments.device).tril()
    same = segments[:, :, None] == segments[:, None, :]
    real = (segments != PAD_SEGMENT)[:, :, None]
    diagonal = torch.eye(length, dtype=torch.bool, device=segments.device)
    mask = ((same & causal & real) | diagonal).unsqueeze(1)
    if dtype is None or dtype == torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def flex_block_mask(segment_ids: torch.Tensor):
    """The :func:`block_causal_mask` pattern as a FlexAttention ``BlockMask`` (built on the segments' device)."""
    from torch.nn.attention.flex_attention import create_block_mask

    segments = segment_ids if segment_ids.dim() == 2 else segment_ids.unsqueeze(0)
    batch, length = segments.shape

    def same_document_causal(b, h, q, k):
        real = segments[b, q] != PAD_SEGMENT
        return ((segments[b, q] == segments[b, k]) & (q >= k) & real) | (q == k)

    return create_block_mask(same_document_causal, batch, None, length, length, device=segments.device)


def flatten_for_varlen(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch as one ``(1, B*T)`` row with ``position_ids`` and no mask: the form flash-attention needs.

    Safe because labels never cross a segment boundary in a way the model could see (each segment restarts
    at position 0, so flash-attention treats it as a sequence of its own, padding included).
    """
    return {key: batch[key].reshape(1, -1) for key in ("input_ids", "labels", "position_ids") if key in batch}


def packed_model_inputs(input_ids: torch.Tensor, segment_ids: torch.Tensor, position_ids: torch.Tensor | None,
                        attn_implementation: str) -> dict[str, torch.Tensor]:
    """``input_ids``/``position_ids``/``attention_mask`` for the kernel (module docstring); ``input_ids`` keep
    their ``(B, T)`` shape except for flash-attention, whose caller reshapes the logits back."""
    positions = document_positions(segment_ids) if position_ids is None else position_ids
    if attn_implementation == "flash_attention_2":
        return flatten_for_varlen({"input_ids": input_ids, "position_ids": positions})
    if attn_implementation == "flex_attention":
        mask = flex_block_mask(segment_ids)
    elif attn_implementation == "eager":
        mask = block_causal_mask(segment_ids, dtype=torch.float32)  # added to bf16 scores it promotes them
    else:
        mask = block_causal_mask(segment_ids)
    return {"input_ids": input_ids, "position_ids": positions, "attention_mask": mask}
