"""Models: tokenizer, causal LM factory."""
