"""Backends from config, one per process: the stages of a run share the loaded model and the reply cache."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from infir.synth.backends.base import ChatRequest, GenerationBackend, Reply
from infir.synth.backends.cache import CachedBackend

_BUILT: dict[str, GenerationBackend] = {}


def build_backend(spec: dict[str, Any], reply_cache: str | None = None) -> GenerationBackend:
    """The backend ``spec`` (a ``_target_`` node as plain dict) describes, behind the reply cache if given."""
    key = json.dumps([spec, reply_cache], sort_keys=True, default=str)
    if key not in _BUILT:
        from hydra.errors import InstantiationException
        from hydra.utils import instantiate

        try:
            backend = instantiate(spec, _convert_="all")
        except InstantiationException as error:
            cause = error.__cause__ or error
            hint = (" (the embedded default generates with the SFT export of `python train.py "
                    "experiment=embedded_chain`; or set synth.generator.model=<HF dir>)"
                    if isinstance(cause, FileNotFoundError) else "")
            raise ValueError(f"synth.generator: {cause}{hint}") from None
        _BUILT[key] = CachedBackend(backend, reply_cache) if reply_cache else backend
    return _BUILT[key]


class UsesBackend:
    """Mixin of stages that ask a backend: holds the plain spec (picklable) and builds it on first use."""

    generator: dict[str, Any]
    reply_cache: str | None

    @property
    def backend(self) -> GenerationBackend:
        return build_backend(self.generator, self.reply_cache)

    def ask(self, requests: Sequence[ChatRequest], counts: Counter) -> list[Reply]:
        """The backend's replies; what it counted meanwhile (requests, retries, cache hits) goes into
        ``counts`` as ``backend_<event>``, so each stage's statistics show its own retries."""
        backend = self.backend
        before = Counter(backend.stats)
        replies = backend.complete(requests)
        counts.update({f"backend_{k}": v for k, v in (Counter(backend.stats) - before).items()})
        return replies
