"""Document-masked packing: the one mechanism SFT and pre-training share (infir/models/packed_attention.py).

A packed window must give every document exactly the logits it has when run alone, for each attention kernel
that runs on CPU, and the pre-training windows must know their documents from the recorded starts.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from infir.data.mixture import WindowDataset
from infir.data.token_shards import TokenStream, write_stream
from infir.models.packed_attention import PAD_SEGMENT, block_causal_mask, document_positions, packed_model_inputs
from infir.models.tokenizer import load_tokenizer, train_bpe
from infir.training.module import CausalLMModule
from infir.training.schedules import LRSchedule

SEQ = 96
WORDS = "the cat sat on a mat while two dogs ran far away from one big red house near the sea".split()


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """A token stream of documents of 2..30 words (several per window, some crossing windows), one of them
    holding the EOS string in its text."""
    out = tmp_path_factory.mktemp("docmask")
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 30))) for _ in range(80)]
    train_bpe(texts, 300, 2, out / "tok")
    tokenizer = load_tokenizer(out / "tok")
    texts[5] = f"a document quoting {tokenizer.eos_token} in its text " + texts[5]
    write_stream(texts, tokenizer, out / "stream", shard_tokens=10**9)
    return tokenizer, TokenStream(out / "stream", SEQ)


def _model(vocab: int, attn: str) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, use_cache=False)
    config._attn_implementation = attn
    return LlamaForCausalLM(config).eval()


def test_window_segments_follow_the_recorded_document_starts(stream):
    tokenizer, tokens = stream
    starts = np.load(tokens.directory / "shard_00000.docs.npy")
    for index in range(tokens.n_windows):
        segments = tokens.window_segments(index)
        begin = index * SEQ
        # the document of each input position, counted from the window's first document
        expected = np.searchsorted(starts, np.arange(begin, begin + SEQ), side="right") - 1
        assert segments.tolist() == (expected - expected[0]).tolist()
    # the EOS string inside document 5's text is a token, not a boundary (EOS-based detection would split it)
    flat = np.fromfile(tokens.directory / "shard_00000.bin", dtype=np.uint16)
    quoted = [int(o) for o in np.flatnonzero(flat == tokenizer.eos_token_id) if starts[5] <= o < starts[6] - 1]
    assert quoted
    for offset in quoted:
        window, position = divmod(offset, SEQ)
        if position + 1 < SEQ and window < tokens.n_windows:
            segments = tokens.window_segments(window)
            assert segments[position] == segments[position + 1]


@pytest.mark.parametrize("attn", ["sdpa", "eager", "flex_attention"])
def test_document_masked_window_gives_each_document_its_logits_alone(stream, attn):
    """fp32, relative 1e-5: every document of a packed pre-training window (the first one starting mid-way)
    scores as if it were the only text; without masking the later documents see the earlier ones."""
    tokenizer, tokens = stream
    dataset = WindowDataset(tokens, domain=0, document_masking=True)
    items = [dataset[i] for i in range(len(dataset)) if dataset[i]["segment_ids"].max() >= 2][:4]  # 3+ documents
    assert len(items) == 4
    batch = {k: torch.stack([item[k] for item in items]) for k in ("input_ids", "segment_ids")}
    module = CausalLMModule(_model(len(tokenizer), attn), {"lr": 1e-3}, LRSchedule("constant", 1), ["d"], SEQ)
    with torch.no_grad():
        packed = module(batch["input_ids"], batch["segment_ids"])
        crossing = module(batch["input_ids"])
        for row in range(len(items)):
            segments = batch["segment_ids"][row]
            for doc in segments.unique().tolist():
                where = segments == doc
                alone = module.model(input_ids=batch["input_ids"][row, where][None]).logits[0]
                torch.testing.assert_close(packed[row, where], alone, rtol=1e-5, atol=1e-6)
                if doc > 0:
                    assert not torch.allclose(crossing[row, where], alone, rtol=1e-3, atol=1e-4)


def test_positions_restart_per_segment_and_padding_sees_only_itself():
    segments = torch.tensor([[0, 0, 1, 1, 1, PAD_SEGMENT], [3, 3, 3, 4, PAD_SEGMENT, PAD_SEGMENT]])
    assert document_positions(segments).tolist() == [[0, 1, 0, 1, 2, 0], [0, 1, 2, 0, 0, 1]]
    mask = block_causal_mask(segments[0])[0, 0].int().tolist()
    assert mask == [[1, 0, 0, 0, 0, 0],
                    [1, 1, 0, 0, 0, 0],
                    [0, 0, 1, 0, 0, 0],
                    [0, 0, 1, 1, 0, 0],
                    [0, 0, 1, 1, 1, 0],
                    [0, 0, 0, 0, 0, 1]]
    additive = block_causal_mask(torch.tensor([[0, 1]]), dtype=torch.float16)[0, 0]
    assert additive[0, 0] == 0 and additive[1, 0] == torch.finfo(torch.float16).min
    # flash-attention gets one row with the position resets and no mask (its varlen kernel splits on them)
    flat = packed_model_inputs(torch.zeros_like(segments), segments, None, "flash_attention_2")
    assert set(flat) == {"input_ids", "position_ids"} and flat["position_ids"].shape == (1, 12)
    assert flat["position_ids"][0].tolist() == [0, 1, 0, 1, 2, 0, 0, 1, 2, 0, 0, 1]
