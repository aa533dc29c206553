"""Local generation: any HF causal-LM directory (our exports included) through the eval's batched decoder.

Requests are grouped by their sampling settings and each group goes through
:func:`infir.eval.generation.generate_with_endings` (KV-cached, finished rows leave the batch), so a shard's
worth of prompts decodes together. Prompts are rendered with the model's own chat template, as the
instruct-mode eval renders them.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infir.synth.backends.base import LENGTH, STOP, ChatRequest, Completion, Reply


def model_dir_fingerprint(path: str | Path) -> str:
    """Cheap identity of an HF directory: its config and the names, sizes and mtimes of its weight files."""
    path = Path(path).expanduser().resolve()
    h = hashlib.sha256(str(path).encode())
    config = path / "config.json"
    if config.is_file():
        h.update(config.read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        stat = weights.stat()
        h.update(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


class LocalBackend:
    """Generate with a local HF model; ``batch_size`` rows (prompt x sample) decode together."""

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", batch_size: int = 16,
                 torch_threads: int | None = None) -> None:
        from infir.eval.loading import check_dtype, check_model_path

        self.path = str(check_model_path(model))  # a missing export fails here, before any stage runs
        self.device, self.dtype = device, check_dtype(dtype)
        self.batch_size = int(batch_size)
        self.torch_threads = torch_threads
        self.stats: Counter = Counter()
        self._loaded: tuple[Any, Any] | None = None

    def __getstate__(self) -> dict:  # workers load the model themselves
        return {**self.__dict__, "_loaded": None}

    def fingerprint(self) -> str:
        return f"local:{model_dir_fingerprint(self.path)}:{self.dtype}"

    def _model(self) -> tuple[Any, Any]:
        if self._loaded is None:
            import torch

            from infir.eval.loading import load_model
            from infir.models.chat_template import ensure_chat_template

            if self.torch_threads:
                torch.set_num_threads(int(self.torch_threads))
            model, tokenizer = load_model(self.path, self.device, self.dtype)
            self._loaded = (model, ensure_chat_template(tokenizer))
        return self._loaded

    def render(self, request: ChatRequest) -> str:
        """The prompt text the model continues: the chat up to the assistant's turn."""
        _, tokenizer = self._model()
        text = tokenizer.apply_chat_template(request.message_dicts, tokenize=False, add_generation_prompt=True)
        bos = tokenizer.bos_token
        return text[len(bos):] if bos and text.startswith(bos) else text  # generate adds the prefix token

    def complete(self, requests: Sequence[ChatRequest]) -> list[Reply]:
        from infir.eval.generation import GenerationConfig, generate_with_endings

        model, tokenizer = self._model()
        replies: list[Reply | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for index, request in enumerate(requests):
            settings = (request.n, request.max_tokens, request.temperature, request.top_p, request.seed)
            groups.setdefault(settings, []).append(index)
        for (n, max_tokens, temperature, top_p, seed), members in groups.items():
            config = GenerationConfig(max_new_tokens=max_tokens, do_sample=temperature > 0,
                                      temperature=temperature if temperature > 0 else 1.0, top_p=top_p,
                                      num_samples=n, batch_size=max(self.batch_size, n), seed=seed)
            prompts = [self.render(requests[i]) for i in members]
            outputs = generate_with_endings(model, tokenizer, prompts, config)
            for i, completions in zip(members, outputs):
                replies[i] = [Completion(text, STOP if finished else LENGTH) for text, finished in completions]
        self.stats["requests"] += len(requests)
        self.stats["completions"] += sum(len(r) for r in replies if isinstance(r, list))
        return replies  # type: ignore[return-value]

