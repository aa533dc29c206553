"""The vision-language model: splice + count check, freezing per phase, mixed batches, export round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

import infir  # noqa: F401  (torchvision op guard before timm)
from infir.data.sft import IGNORE_INDEX
from infir.eval.vl.metrics import char_accuracy, click_hit
from infir.models.chat_template import ensure_chat_template
from infir.models.tokenizer import load_tokenizer, train_bpe
from infir.models.vlm.build import build_vlm, load_vlm, save_vlm
from infir.models.vlm.model import ImageTokenMismatch
from infir.models.vlm.projector import pixel_shuffle
from infir.training.module import VisionLanguageModule, build_adamw, next_token_loss
from infir.training.phases import apply_trainable
from infir.training.schedules import LRSchedule
from infir.vision.datamodule import encode_records
from infir.vision.encoding import collate_vl, encode_vl_record
from infir.vision.llava_json import read_llava_records
from infir.vision.transforms import ImageProcessor

CONF = Path(__file__).resolve().parent.parent / "conf"
MODALITY = {"vision_tower": {"kind": "timm", "name": "vit_base_patch16_siglip_224",
                             "model_args": {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}},
            "projector": {"kind": "mlp2x_gelu", "pixel_shuffle": 2}, "image": {"policy": "pad"}}
MODEL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
         "num_key_value_heads": 1, "rms_norm_eps": 1e-5, "tie_word_embeddings": True, "initializer_range": 0.02,
         "max_position_embeddings": 512, "rope_theta": 10000.0, "vocab_multiple": 64}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tok")
    texts = ["Describe the image. A red square on a blue background. What is 3 + 4? 7"] * 50 + ["0 1 2 3 4 5 6 7 8 9"]
    train_bpe(texts, 320, 1, out)
    return out


@pytest.fixture()
def vlm(tokenizer_dir: Path):
    torch.manual_seed(0)
    tokenizer = ensure_chat_template(load_tokenizer(tokenizer_dir))
    model, processor = build_vlm(MODALITY, MODEL, tokenizer)
    return model, processor, tokenizer


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LLaVA JSON file: one-image, two-image and text-only rows, plus the malformed kinds users hit."""
    root = tmp_path_factory.mktemp("llava")
    Image.new("RGB", (40, 30), (255, 0, 0)).save(root / "red.png")
    Image.new("RGB", (20, 60), (0, 0, 255)).save(root / "blue.png")
    turn = lambda q, a: [{"from": "human", "value": q}, {"from": "gpt", "value": a}]  # noqa: E731
    rows = [{"id": "one", "image": "red.png", "conversations": turn("Describe the image.", "A red square.")},
            {"id": "two", "image": ["red.png", "blue.png"], "conversations": turn("<image> then <image>: colours?", "red, blue")},
            {"id": "text", "messages": [{"role": "user", "content": "What is 3 + 4?"}, {"role": "assistant", "content": "7"}]},
            {"id": "missing", "image": "nope.png", "conversations": turn("Describe the image.", "x")},
            {"id": "count", "image": ["red.png"], "conversations": turn("<image> and <image>", "x")},
            {"id": "in_answer", "image": "red.png", "conversations": turn("<image> hi", "<image>")}]
    (root / "data.json").write_text(json.dumps(rows))
    return root / "data.json"


def _batch(vlm, records: Path, ids: tuple[str, ...]):
    model, processor, tokenizer = vlm
    loaded = [r for r in read_llava_records(records).records if r.id in ids]
    samples = [encode_vl_record(tokenizer, r, processor, model.tokens_per_image, model.image_token_id, 512)
               for r in loaded]
    return collate_vl(samples, processor, tokenizer.pad_token_id or 0), samples


def _logits(model, batch):
    return model(batch["input_ids"], batch["attention_mask"], None, batch["pixel_values"], batch["image_counts"],
                 batch["sample_ids"])


def test_reader_counts_each_bad_record_by_reason(records: Path) -> None:
    loaded = read_llava_records(records)
    assert [r.id for r in loaded.records] == ["one", "two", "text"]
    assert loaded.skipped == {"missing image": 1, "image count mismatch": 1, "image in assistant turn": 1}
    one = loaded.records[0]  # LLaVA's rule: a lone image without <image> goes before the first human turn
    assert one.messages[0]["content"].startswith("<image>\n") and len(one.images) == 1


def test_placeholders_expand_to_the_features_and_are_never_targets(vlm, records: Path) -> None:
    model, _, _ = vlm
    batch, samples = _batch(vlm, records, ("one", "two", "text"))
    per_image = model.tokens_per_image
    assert per_image == 4  # 4x4 patches, pixel shuffle 2
    placeholders = (batch["input_ids"] == model.image_token_id).sum(1).tolist()
    assert placeholders == [per_image, 2 * per_image, 0] and batch["image_counts"].tolist() == [1, 2, 0]
    assert batch["pixel_values"].shape == (3, 3, 32, 32)
    for sample in samples:  # no label targets an image slot
        targets = [t for t, label in zip(sample.input_ids[1:], sample.labels) if label != IGNORE_INDEX]
        assert model.image_token_id not in targets and targets
    # the spliced embeddings are the projected image features, in order
    embeds = model.embed(batch["input_ids"], batch["pixel_values"], batch["image_counts"])
    features = model.image_features(batch["pixel_values"])
    spliced = embeds[batch["input_ids"] == model.image_token_id]
    assert torch.allclose(spliced, features.reshape(-1, features.shape[-1]))


def test_a_count_mismatch_names_the_sample(vlm, records: Path) -> None:
    model, _, _ = vlm
    batch, _ = _batch(vlm, records, ("one", "two", "text"))
    ids = batch["input_ids"].clone()
    ids[1, (ids[1] == model.image_token_id).nonzero()[0, 0]] = 5  # one placeholder of sample "two" lost
    with pytest.raises(ImageTokenMismatch, match="sample 'two': 7 image placeholder tokens but 2 image"):
        model(ids, batch["attention_mask"], None, batch["pixel_values"], batch["image_counts"], batch["sample_ids"])
    with pytest.raises(ImageTokenMismatch, match="image_counts sum to 3 but 2 images"):
        model(batch["input_ids"], batch["attention_mask"], None, batch["pixel_values"][:2], batch["image_counts"])


def test_text_only_batches_skip_the_tower_and_mixed_batches_train(vlm, records: Path, monkeypatch) -> None:
    model, _, _ = vlm
    calls = []
    forward = model.vision_tower.forward
    monkeypatch.setattr(model.vision_tower, "forward", lambda px: calls.append(px.shape[0]) or forward(px))
    text_batch, _ = _batch(vlm, records, ("text",))
    assert text_batch["pixel_values"] is None
    _logits(model, text_batch)
    assert calls == []  # no dummy image
    batch, _ = _batch(vlm, records, ("one", "text"))
    loss = next_token_loss(_logits(model, batch), batch["labels"])
    loss.backward()
    assert calls == [1] and torch.isfinite(loss)
    assert model.projector.linear_1.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("phase", ["mm_align", "mm_render", "mm_sft"])
def test_one_step_of_each_phase_changes_only_its_modules(vlm, records: Path, phase: str) -> None:
    model, _, _ = vlm
    phase_cfg = OmegaConf.to_container(OmegaConf.load(CONF / "phase" / f"{phase}.yaml"))
    patterns = phase_cfg.get("trainable") or OmegaConf.load(CONF / "phase" / "mm_align.yaml").trainable
    apply_trainable(model, list(patterns))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = build_adamw(model, 1e-2, 0.0, (0.9, 0.999), 1e-8, False,
                            lr_groups=(phase_cfg.get("optimizer") or {}).get("lr_groups"))
    batch, _ = _batch(vlm, records, ("one", "two", "text"))
    next_token_loss(_logits(model, batch), batch["labels"]).backward()
    optimizer.step()
    changed = {n.split(".")[0] for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    expected = {"mm_align": {"projector"}, "mm_render": {"vision_tower", "projector"},
                "mm_sft": {"vision_tower", "projector", "language_model"}}[phase]
    assert changed == expected


def test_lr_groups_give_the_projector_its_own_peak_lr(vlm) -> None:
    model, _, _ = vlm
    optimizer = build_adamw(model, 2e-5, 0.0, (0.9, 0.999), 1e-8, False, lr_groups={"projector.": 1e-3})
    by_name = {}
    for group in optimizer.param_groups:
        by_name.setdefault(group["name"], set()).add(group["lr"])
    assert by_name == {"base": {2e-5}, "projector.": {1e-3}} and optimizer.param_groups[0]["lr"] == 2e-5
    projector_params = {id(p) for p in model.projector.parameters()}
    for group in optimizer.param_groups:
        assert all((id(p) in projector_params) == (group["name"] == "projector.") for p in group["params"])


def test_save_load_gives_identical_logits_and_a_plain_transformers_lm(vlm, records: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    model, processor, tokenizer = vlm
    model.eval()
    batch, _ = _batch(vlm, records, ("one", "two", "text"))
    save_vlm(model, tokenizer, processor, tmp_path / "export")
    loaded, loaded_processor, loaded_tokenizer = load_vlm(tmp_path / "export")
    loaded.eval()
    assert loaded_processor == processor and len(loaded_tokenizer) == len(tokenizer)
    with torch.no_grad():
        assert torch.equal(_logits(model, batch), _logits(loaded, batch))
        lm = AutoModelForCausalLM.from_pretrained(tmp_path / "export" / "language_model", local_files_only=True)
        ids = batch["input_ids"][2:, :10]
        assert torch.equal(lm(ids).logits, model.language_model(ids).logits)


def test_over_long_samples_are_dropped_and_counted_never_cut(vlm, records: Path) -> None:
    model, processor, tokenizer = vlm
    loaded = read_llava_records(records).records
    lengths = {r.id: len(encode_vl_record(tokenizer, r, processor, model.tokens_per_image, model.image_token_id,
                                          512).input_ids) for r in loaded}
    limit = lengths["two"] - 1
    samples, skipped = encode_records(tokenizer, loaded, processor, model.tokens_per_image, model.image_token_id,
                                      limit, "test")
    assert skipped == {"too long": 1} and sorted(s.id for s in samples) == sorted(i for i in lengths if i != "two")


def test_pixel_shuffle_merges_neighbour_blocks() -> None:
    grid = torch.arange(27 * 27, dtype=torch.float32).view(1, 27 * 27, 1)  # So400m/384: 27 x 27 patches
    shuffled = pixel_shuffle(grid, (27, 27), 3)
    assert shuffled.shape == (1, 81, 9)  # 729 -> 81 tokens
    assert shuffled[0, 0].tolist() == [0, 1, 2, 27, 28, 29, 54, 55, 56]
    with pytest.raises(ValueError, match="divisible"):
        pixel_shuffle(torch.zeros(1, 64, 4), (8, 8), 3)


@pytest.mark.parametrize("size", [(40, 30), (300, 64), (16, 200), (96, 96)])
def test_tile_policy_tile_count_matches_the_tensor(size: tuple[int, int]) -> None:
    processor = ImageProcessor(size=32, mean=(0.5,) * 3, std=(0.5,) * 3, policy="tile", max_tiles=4)
    tensor = processor(Image.new("RGB", size, (10, 20, 30)))
    assert tensor.shape == (processor.num_images(*size), 3, 32, 32)
    assert processor.num_images(300, 64) > 1 and processor.num_images(16, 16) == 1


def test_eval_metrics_follow_the_benchmarks() -> None:
    assert char_accuracy("ab3", "abc") == pytest.approx(2 / 3) and char_accuracy("zzzzzz", "ab") == 0.0
    # ScreenSpot: bbox is x, y, w, h in pixels; the point is in [0, 1000]
    assert click_hit("(500, 500)", (90, 90, 20, 20), 201, 201) == 1.0
    assert click_hit("I would click (100, 100)", (90, 90, 20, 20), 201, 201) == 0.0
    assert click_hit("no point", (0, 0, 200, 200), 201, 201) == 0.0


def test_an_open_clip_visual_tower_trains_and_round_trips(tokenizer_dir: Path, records: Path, tmp_path: Path) -> None:
    """open_clip's towers by config name: here a tiny ViT config registered the way open_clip reads its own."""
    import open_clip

    config = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
              "text_cfg": {"context_length": 16, "vocab_size": 100, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "infir-tiny-clip-test.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "infir-tiny-clip-test.json")
    modality = {**MODALITY, "vision_tower": {"kind": "open_clip", "name": "infir-tiny-clip-test"}}
    tokenizer = ensure_chat_template(load_tokenizer(tokenizer_dir))
    model, processor = build_vlm(modality, MODEL, tokenizer)
    assert (model.vision_tower.grid, model.vision_tower.hidden_size, model.tokens_per_image) == ((4, 4), 64, 4)
    batch, _ = _batch((model, processor, tokenizer), records, ("one", "two", "text"))
    next_token_loss(_logits(model, batch), batch["labels"]).backward()
    assert model.vision_tower.model.conv1.weight.grad.abs().sum() > 0
    model.eval()
    save_vlm(model, tokenizer, processor, tmp_path / "export")
    loaded, _, _ = load_vlm(tmp_path / "export")
    with torch.no_grad():
        assert torch.equal(_logits(model, batch), _logits(loaded.eval(), batch))


def test_a_conv_net_tower_reads_its_feature_map_and_a_frozen_one_keeps_its_batchnorm(
        tokenizer_dir: Path, records: Path, tmp_path: Path) -> None:
    """A timm conv net (here timm's tiny BatchNorm ResNet) as tower: stage 3's 4 x 4 map of 192 channels is
    16 tokens (4 after pixel shuffle); frozen (mm_align) its BatchNorm running statistics stay as they were,
    training (mm_render) they move; the export round-trips."""
    modality = {**MODALITY, "vision_tower": {"kind": "timm", "name": "test_resnet", "image_size": 64,
                                             "feature_layer": 3}}
    tokenizer = ensure_chat_template(load_tokenizer(tokenizer_dir))
    torch.manual_seed(0)
    model, processor = build_vlm(modality, MODEL, tokenizer)
    tower = model.vision_tower
    assert (tower.image_size, tower.grid, tower.hidden_size, model.tokens_per_image) == (64, (4, 4), 192, 4)
    assert processor.size == 64
    batch, _ = _batch((model, processor, tokenizer), records, ("one", "two", "text"))

    def step(patterns: list[str]) -> dict[str, torch.Tensor]:
        apply_trainable(model, patterns)
        model.train()
        buffers = {n: b.clone() for n, b in tower.named_buffers()}
        optimizer = build_adamw(model, 1e-2, 0.0, (0.9, 0.999), 1e-8, False)
        next_token_loss(_logits(model, batch), batch["labels"]).backward()
        optimizer.step()
        return {n: b for n, b in buffers.items() if not torch.equal(b, dict(tower.named_buffers())[n])}

    assert step(["projector.*"]) == {} and not tower.training
    moved = step(["vision_tower.*", "projector.*"])
    assert tower.training and any(n.endswith("running_mean") for n in moved)
    model.eval()
    save_vlm(model, tokenizer, processor, tmp_path / "export")
    loaded, _, _ = load_vlm(tmp_path / "export")
    with torch.no_grad():
        assert torch.equal(_logits(model, batch), _logits(loaded.eval(), batch))


def test_a_bad_tower_stage_or_size_is_a_config_error() -> None:
    from infir.models.vlm.tower import TowerSpec, VisionTower

    with pytest.raises(ValueError, match="feature_layer=7"):
        VisionTower(TowerSpec.from_config({"kind": "timm", "name": "test_resnet", "image_size": 64, "feature_layer": 7}))
    vit = {**MODALITY["vision_tower"], "image_size": 64}  # a ViT's side is model_args.img_size (32 here)
    with pytest.raises(ValueError, match="image_size=64.*model_args.img_size"):
        VisionTower(TowerSpec.from_config(vit))


def test_chunked_loss_of_the_vision_language_module_equals_its_plain_loss(vlm, records: Path) -> None:
    """model.loss=chunked for the VLM: the LM head runs on the language model's hidden states chunk by chunk;
    loss and gradients (projector, LM) equal the plain loss's on a mixed image/text batch."""
    model, _, _ = vlm
    apply_trainable(model, ["*"])
    batch, _ = _batch(vlm, records, ("one", "two", "text"))
    results = []
    for speed in ({}, {"loss": "chunked", "loss_chunk_tokens": 5}):
        model.zero_grad(set_to_none=True)
        module = VisionLanguageModule(model, {"lr": 1e-3}, LRSchedule("constant", 1), ["vl"], 64, speed=speed)
        loss = module._loss(batch)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (plain, plain_grads), (chunked, chunked_grads) = results
    torch.testing.assert_close(chunked, plain, rtol=1e-6, atol=0)
    assert plain_grads.keys() == chunked_grads.keys() and any(n.startswith("projector") for n in plain_grads)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(chunked_grads[name], grad, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")
