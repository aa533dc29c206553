"""The vision-language model: image features spliced into the LM's input embeddings at ``<image>`` tokens.

One splice function (:meth:`VisionLanguageModel.embed`) serves training, validation and generation. Its
count check is explicit: every sample must hold exactly ``images x tokens_per_image`` placeholder tokens,
else :class:`ImageTokenMismatch` names the sample (a silent ``masked_scatter`` over a wrong count is the
failure LLaVA/nanoVLM users report most). Samples without images contribute no pixels: a batch of text
only never runs the tower, and a mixed batch runs it on the images present only (no dummy images).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import LlamaForCausalLM

from infir.models.vlm.projector import Projector
from infir.models.vlm.tower import VisionTower


class ImageTokenMismatch(ValueError):
    """A sample's ``<image>`` placeholder count differs from its image features."""


class VisionLanguageModel(nn.Module):
    """``vision_tower`` -> ``projector`` -> spliced into ``language_model`` (a transformers causal LM)."""

    def __init__(self, vision_tower: VisionTower, projector: Projector, language_model: LlamaForCausalLM,
                 image_token_id: int) -> None:
        super().__init__()
        self.vision_tower = vision_tower
        self.projector = projector
        self.language_model = language_model
        self.image_token_id = int(image_token_id)
        if not 0 <= self.image_token_id < language_model.get_input_embeddings().num_embeddings:
            raise ValueError(f"image token id {image_token_id} is outside the LM's embedding table")

    @property
    def config(self):  # what the training module and throughput code read (attention implementation, sizes)
        return self.language_model.config

    @property
    def tokens_per_image(self) -> int:
        return self.projector.tokens_per_image

    def get_input_embeddings(self) -> nn.Embedding:
        return self.language_model.get_input_embeddings()

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` -> ``(N, tokens_per_image, hidden)``; a frozen tower runs without autograd."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.vision_tower.trains):
            features = self.vision_tower(pixel_values)
        return self.projector(features)

    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
              image_counts: torch.Tensor | None = None, sample_ids: Sequence[str] | None = None) -> torch.Tensor:
        """Token embeddings with each sample's image features written over its placeholder tokens, in order."""
        embeds = self.get_input_embeddings()(input_ids)
        is_image = input_ids == self.image_token_id
        placeholders = is_image.sum(dim=1)
        counts = torch.zeros_like(placeholders) if image_counts is None else image_counts.to(placeholders.device)
        n_images = 0 if pixel_values is None else int(pixel_values.shape[0])
        if int(counts.sum()) != n_images:
            raise ImageTokenMismatch(f"batch: image_counts sum to {int(counts.sum())} but {n_images} images were given")
        expected = counts * self.tokens_per_image
        wrong = (placeholders != expected).nonzero().flatten().tolist()
        if wrong:
            b = wrong[0]
            name = sample_ids[b] if sample_ids is not None else f"#{b} of the batch"
            raise ImageTokenMismatch(
                f"sample {name!r}: {int(placeholders[b])} image placeholder tokens but {int(counts[b])} image(s) x "
                f"{self.tokens_per_image} features = {int(expected[b])}; encode prompts with the model's processor "
                f"(one <image> per image) and do not truncate through image tokens")
        if n_images == 0:
            return embeds
        features = self.image_features(pixel_values).to(embeds.dtype)
        return embeds.masked_scatter(is_image.unsqueeze(-1), features.reshape(-1, features.shape[-1]))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, pixel_values: torch.Tensor | None = None,
                image_counts: torch.Tensor | None = None, sample_ids: Sequence[str] | None = None,
                hidden: bool = False) -> torch.Tensor:
        """Logits ``(B, L, vocab)``; with ``hidden`` the final normed hidden states ``(B, L, d)`` instead, no
        logits computed (the chunked loss applies the LM head itself)."""
        embeds = self.embed(input_ids, pixel_values, image_counts, sample_ids)
        if hidden:
            return self.language_model(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                                       use_cache=False, output_hidden_states=[-1],
                                       logits_to_keep=torch.empty(0, dtype=torch.long, device=embeds.device)
                                       ).hidden_states[-1]
        return self.language_model(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                                   use_cache=False).logits

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor | None,
                 image_counts: torch.Tensor | None, max_new_tokens: int, eos_token_id: int | list[int],
                 pad_token_id: int, sample_ids: Sequence[str] | None = None) -> torch.Tensor:
        """Greedy continuation of left-padded prompts; returns only the new tokens ``(B, <= max_new_tokens)``."""
        embeds = self.embed(input_ids, pixel_values, image_counts, sample_ids)
        return self.language_model.generate(inputs_embeds=embeds, attention_mask=attention_mask,
                                            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                            eos_token_id=eos_token_id, pad_token_id=pad_token_id, use_cache=True)
