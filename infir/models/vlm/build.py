"""Build, save and load the vision-language model; the export is the unit every VL phase hands on.

``init_from`` follows the text phases: ``scratch`` (LM from the size config), ``hf:<dir>`` (a text export
or any local Llama directory: the LM; a VL export: the whole model), ``ckpt:<path>`` (one of our VL
Lightning checkpoints, weights only). The tokenizer gains one special token, ``<image>``; if the LM's
(padded) embedding table has no free row for it, the table grows.

Export layout (``save_vlm``): ``infir_vlm.json`` (tower spec, projector, image token, format version),
``vision.safetensors`` (tower + projector weights), ``language_model/`` (a plain transformers
``LlamaForCausalLM`` directory with the tokenizer, usable by the text eval as is),
``preprocessor_config.json`` (the image processor) and the tokenizer at the top level. Why not
transformers' ``LlavaForConditionalGeneration``: its vision side needs a tower with a ``hidden_size``
config and per-layer hidden states as (N, tokens, dim); with a ``timm_wrapper`` vision config (transformers
5.23) LLaVA fails at construction (``TimmWrapperConfig`` has no ``hidden_size``) and, with that patched, at
the projector (timm's ``forward_intermediates`` returns NCHW maps), and it has no pixel shuffle. See the
README's Multimodal section.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, LlamaForCausalLM, PreTrainedTokenizerBase

from infir.models.causal_lm import build_causal_lm, load_checkpoint_weights
from infir.models.vlm.model import VisionLanguageModel
from infir.models.vlm.projector import Projector
from infir.models.vlm.tower import TowerSpec, VisionTower, tower_normalisation
from infir.vision.encoding import add_image_token
from infir.vision.transforms import ImageProcessor

log = logging.getLogger(__name__)

VLM_CONFIG_FILE = "infir_vlm.json"
VLM_FORMAT = "infir-vlm/1"
_WEIGHTS = "vision.safetensors"
_PROCESSOR = "preprocessor_config.json"
LANGUAGE_MODEL_DIR = "language_model"


def is_vlm_export(path: str | Path) -> bool:
    return (Path(path) / VLM_CONFIG_FILE).is_file()


def _fit_embeddings(lm: LlamaForCausalLM, tokenizer: PreTrainedTokenizerBase, multiple: int) -> None:
    if len(tokenizer) > lm.get_input_embeddings().num_embeddings:
        lm.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=multiple, mean_resizing=False)
        log.info("LM embedding table grown to %d rows for the <image> token", lm.get_input_embeddings().num_embeddings)


def _assemble(tower_spec: TowerSpec, projector_cfg: Mapping[str, Any], lm: LlamaForCausalLM,
              image_token_id: int) -> VisionLanguageModel:
    tower = VisionTower(tower_spec)
    projector = Projector.from_config(projector_cfg, tower.hidden_size, lm.config.hidden_size, tower.grid)
    return VisionLanguageModel(tower, projector, lm, image_token_id).train()  # from_pretrained leaves the LM in eval mode


def build_vlm(modality_cfg: Mapping[str, Any], model_cfg: Mapping[str, Any], tokenizer: PreTrainedTokenizerBase,
              init_from: str = "scratch") -> tuple[VisionLanguageModel, ImageProcessor]:
    """The model a VL phase trains and its image processor; ``tokenizer`` gains ``<image>`` (in place)."""
    if init_from.startswith("hf:") and is_vlm_export(init_from[3:]):
        model, processor, _ = load_vlm(init_from[3:], tokenizer=tokenizer)
        return model, processor
    lm_init = init_from if init_from.startswith("hf:") else "scratch"
    had_image_token = "<image>" in tokenizer.get_vocab()
    # the LM is built for the tokenizer it was trained with; <image> then takes a free padded row or grows the table
    lm = build_causal_lm(model_cfg, len(tokenizer) + (0 if had_image_token or lm_init != "scratch" else 1),
                         tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id, init_from=lm_init)
    image_token_id = add_image_token(tokenizer)
    _fit_embeddings(lm, tokenizer, int(model_cfg.get("vocab_multiple", 64)))
    model = _assemble(TowerSpec.from_config(modality_cfg["vision_tower"]), modality_cfg["projector"], lm,
                      image_token_id)
    if init_from.startswith("ckpt:"):
        load_checkpoint_weights(model, init_from, tied=bool(lm.config.tie_word_embeddings))
    elif init_from != "scratch" and not init_from.startswith("hf:"):
        raise ValueError(f"init_from must be 'scratch', 'hf:<dir>' or 'ckpt:<path>', got {init_from!r}")
    mean, std = tower_normalisation(model.vision_tower)
    processor = ImageProcessor.from_config(modality_cfg.get("image") or {}, model.vision_tower.image_size, mean, std)
    return model, processor


def save_vlm(model: VisionLanguageModel, tokenizer: PreTrainedTokenizerBase, processor: ImageProcessor,
             out_dir: Path, state_dict: Mapping[str, torch.Tensor] | None = None) -> Path:
    """Write the export layout above; ``state_dict`` (keys as ``model.state_dict()``) overrides the live weights."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state = dict(state_dict) if state_dict is not None else model.state_dict()
    vision = {k: v.detach().cpu().contiguous() for k, v in state.items() if not k.startswith("language_model.")}
    save_file(vision, str(out_dir / _WEIGHTS))
    lm_state = {k.removeprefix("language_model."): v.detach().cpu() for k, v in state.items()
                if k.startswith("language_model.")}
    lm = model.language_model
    lm.config.use_cache = True
    try:
        lm.save_pretrained(str(out_dir / LANGUAGE_MODEL_DIR), state_dict=lm_state)
    finally:
        lm.config.use_cache = False
    tokenizer.save_pretrained(str(out_dir / LANGUAGE_MODEL_DIR))
    tokenizer.save_pretrained(str(out_dir))
    (out_dir / _PROCESSOR).write_text(json.dumps(processor.to_dict(), indent=2))
    config = {"format": VLM_FORMAT, "vision_tower": {**model.vision_tower.spec.to_dict(), "checkpoint": None},
              "projector": {"kind": model.projector.kind, "pixel_shuffle": model.projector.factor},
              "image_token": "<image>", "image_token_id": model.image_token_id,
              "tokens_per_image": model.tokens_per_image, "language_model": LANGUAGE_MODEL_DIR}
    (out_dir / VLM_CONFIG_FILE).write_text(json.dumps(config, indent=2))
    return out_dir


def load_vlm(path: str | Path, tokenizer: PreTrainedTokenizerBase | None = None
             ) -> tuple[VisionLanguageModel, ImageProcessor, PreTrainedTokenizerBase]:
    """(model, image processor, tokenizer) of a :func:`save_vlm` directory, weights exactly as saved."""
    path = Path(path).expanduser()
    if not is_vlm_export(path):
        raise FileNotFoundError(f"{path}: not a vision-language export ({VLM_CONFIG_FILE} is missing)")
    config = json.loads((path / VLM_CONFIG_FILE).read_text())
    if config.get("format") != VLM_FORMAT:
        raise ValueError(f"{path / VLM_CONFIG_FILE}: format {config.get('format')!r}, this code reads {VLM_FORMAT}")
    tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    image_token_id = add_image_token(tokenizer)
    if image_token_id != config["image_token_id"]:
        raise ValueError(f"{path}: the tokenizer maps <image> to {image_token_id}, the model to "
                         f"{config['image_token_id']}; use the export's own tokenizer")
    lm = LlamaForCausalLM.from_pretrained(str(path / config["language_model"]), local_files_only=True,
                                          dtype=torch.float32)
    lm.config.use_cache = False
    model = _assemble(TowerSpec.from_config(config["vision_tower"]), config["projector"], lm, image_token_id)
    missing, unexpected = model.load_state_dict(load_file(str(path / _WEIGHTS)), strict=False)
    missing = [k for k in missing if not k.startswith("language_model.")]
    if missing or unexpected:
        raise ValueError(f"{path / _WEIGHTS}: weights do not match {VLM_CONFIG_FILE} "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    saved = json.loads((path / _PROCESSOR).read_text())  # JSON lists back to the tuples the processor holds
    processor = ImageProcessor(**{**saved, "mean": tuple(saved["mean"]), "std": tuple(saved["std"])})
    return model, processor, tokenizer
