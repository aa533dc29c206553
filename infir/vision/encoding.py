"""Vision-language conversations -> token ids with each ``<image>`` expanded to its feature slots.

The text side is the text SFT's encoding (``infir/data/sft.py``: chat template, the prefix token,
assistant-only shifted labels), so a multimodal model is trained on exactly the prompt format it is asked
with. ``<image>`` is one special token of the tokenizer; after encoding, each occurrence is repeated
``tiles x tokens_per_image`` times, the number of features the model splices in for that image (the tile
count comes from the image's size and the processor's policy, read from the file header only). A
sample longer than ``max_len`` after expansion is dropped and counted, never cut: a cut through image
tokens is the feature-count mismatch the model refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from transformers import PreTrainedTokenizerBase

from infir.data.sft import IGNORE_INDEX, ConversationTooLong, encode_conversation
from infir.models.tokenizer import prefix_token_id
from infir.vision.llava_json import IMAGE_PLACEHOLDER, VLRecord
from infir.vision.transforms import ImageProcessor

_NO_LIMIT = 1 << 30


def add_image_token(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id of ``<image>``, added as a special (never split) token when the tokenizer lacks it."""
    if IMAGE_PLACEHOLDER not in tokenizer.get_vocab():
        tokenizer.add_tokens([IMAGE_PLACEHOLDER], special_tokens=True)
    return int(tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER))


@dataclass(frozen=True)
class VLSample:
    """Encoded conversation; ``tiles[i]`` tower images of ``images[i]`` fill its placeholder run."""

    id: str
    source: str
    input_ids: list[int]
    labels: list[int]
    images: tuple[Path, ...]
    tiles: tuple[int, ...]


def image_tiles(paths: Sequence[Path], processor: ImageProcessor) -> tuple[int, ...]:
    """Tower images per image file, from the header's size (no pixel decoding)."""
    tiles = []
    for path in paths:
        try:
            with Image.open(path) as image:
                tiles.append(processor.num_images(*image.size))
        except OSError as err:
            raise ValueError(f"unreadable image: {path} ({err})") from err
    return tuple(tiles)


def expand_image_tokens(input_ids: Sequence[int], labels: Sequence[int], tiles: Sequence[int], tokens_per_image: int,
                        image_token_id: int) -> tuple[list[int], list[int]]:
    """Repeat the i-th ``<image>`` token ``tiles[i] * tokens_per_image`` times; the copies' labels are ignored
    (their targets are image slots), the last copy keeps the original label."""
    ids: list[int] = []
    targets: list[int] = []
    image = 0
    for token, label in zip(input_ids, labels):
        if token == image_token_id:
            run = tiles[image] * tokens_per_image
            image += 1
            ids += [token] * run
            targets += [IGNORE_INDEX] * (run - 1) + [label]
        else:
            ids.append(token)
            targets.append(label)
    return ids, targets


def encode_vl_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], tiles: Sequence[int],
                     tokens_per_image: int, image_token_id: int) -> list[int]:
    """Prompt ids for generation: the chat rendered with its generation prompt, exactly the token sequence
    training put before an assistant reply (same prefix token, no second BOS), image tokens expanded."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    bos = tokenizer.bos_token
    text = text[len(bos):] if bos and text.startswith(bos) else text
    ids = [prefix_token_id(tokenizer), *tokenizer(text, add_special_tokens=False)["input_ids"]]
    if sum(t == image_token_id for t in ids) != len(tiles):
        raise ValueError(f"image count mismatch: {sum(t == image_token_id for t in ids)} {IMAGE_PLACEHOLDER} "
                         f"tokens in the prompt, {len(tiles)} images")
    return expand_image_tokens(ids, [IGNORE_INDEX] * len(ids), tiles, tokens_per_image, image_token_id)[0]


def encode_vl_record(tokenizer: PreTrainedTokenizerBase, record: VLRecord, processor: ImageProcessor,
                     tokens_per_image: int, image_token_id: int, max_len: int) -> VLSample:
    """Encode ``record``; ``ValueError("<reason>: ...")`` (``too long``, ``unreadable image``) if unusable."""
    tiles = image_tiles(record.images, processor)
    input_ids, labels = encode_conversation(tokenizer, record.messages, _NO_LIMIT)
    found = sum(token == image_token_id for token in input_ids)
    if found != len(record.images):
        raise ValueError(f"image token lost: the chat template kept {found} of {len(record.images)} "
                         f"{IMAGE_PLACEHOLDER} tokens")
    ids, targets = expand_image_tokens(input_ids, labels, tiles, tokens_per_image, image_token_id)
    if len(ids) > max_len:
        raise ConversationTooLong(f"too long: {len(ids)} positions with image tokens, max_len is {max_len}")
    return VLSample(record.id, record.source, ids, targets, record.images, tiles)


def collate_vl(samples: Sequence[VLSample], processor: ImageProcessor, pad_id: int,
               pad_to: int | None = None) -> dict[str, object]:
    """Right-padded ``input_ids``/``labels``/``attention_mask``, the batch's tower images in sample order
    (``pixel_values``: none for a text-only batch), ``image_counts`` per sample and ``sample_ids``."""
    length = max(pad_to or 0, max(len(s.input_ids) for s in samples))
    input_ids = torch.full((len(samples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), length), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(samples), length), dtype=torch.long)
    pixels: list[torch.Tensor] = []
    for row, sample in enumerate(samples):
        n = len(sample.input_ids)
        input_ids[row, :n] = torch.tensor(sample.input_ids)
        labels[row, :n] = torch.tensor(sample.labels)
        attention[row, :n] = 1
        for path, tiles in zip(sample.images, sample.tiles):
            with Image.open(path) as image:
                tensor = processor(image)
            if tensor.shape[0] != tiles:
                raise ValueError(f"sample {sample.id!r}: {path} gave {tensor.shape[0]} tiles, {tiles} were encoded")
            pixels.append(tensor)
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention,
            "pixel_values": torch.cat(pixels) if pixels else None,
            "image_counts": torch.tensor([sum(s.tiles) for s in samples], dtype=torch.long),
            "sample_ids": [s.id for s in samples]}
