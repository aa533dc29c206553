"""A tiny random causal LM with our BPE tokenizer and chat template, saved as an HF directory.

For tests that need *a* model directory (a generator to decode with, an SFT init) but not a trained one.
"""

from __future__ import annotations

from pathlib import Path


DEFAULT_TEXTS = ["Think step by step. #### 12 The answer is 5. def f(x): return x + 1"] * 50 + \
    ["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?()[]{}"] * 20


def save_tiny_lm(out: Path, seed: int = 0, texts: list[str] | None = None, vocab_size: int = 400,
                 initializer_range: float = 0.02) -> Path:
    """``initializer_range`` well above the default gives peaky logits: greedy decoding is then never decided
    by float noise (what tests comparing two decoders need)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from infir.models.chat_template import ensure_chat_template
    from infir.models.tokenizer import load_tokenizer, train_bpe

    out.mkdir(parents=True, exist_ok=True)
    train_bpe(texts or DEFAULT_TEXTS, vocab_size, 1, out)
    tokenizer = ensure_chat_template(load_tokenizer(out))
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         initializer_range=initializer_range, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
