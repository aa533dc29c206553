"""Vision-language model: a vision tower (timm or open_clip) + projector + the Llama-style LM."""
