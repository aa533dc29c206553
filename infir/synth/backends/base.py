"""The one interface every generation backend serves: chat requests in, ``n`` completions out.

A backend never raises for one bad request: a request that still fails after the backend's retries comes
back as :class:`RequestFailed` (counted by the stage that asked), so a flaky teacher costs samples, not runs.
Requests carry a stable ``key`` and their own ``seed``. Over HTTP a reply depends on the request alone; the
local backend samples a call's requests in batches, so its replies depend on the call's requests (a stage
sends one shard's requests per call, and a resumed shard sends the same ones): either way a resumed run
equals an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

# finish reasons, as the OpenAI protocol names them
STOP, LENGTH = "stop", "length"


@dataclass(frozen=True)
class ChatRequest:
    """One chat prompt to complete ``n`` times with the given sampling settings."""

    key: str  # stable identity of the request (item id + purpose), for caching and logs
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    n: int = 1
    max_tokens: int = 256
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"request {self.key}: n must be >= 1, got {self.n}")
        if self.max_tokens < 1:
            raise ValueError(f"request {self.key}: max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"request {self.key}: temperature must be >= 0 and top_p in (0, 1]")

    @property
    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def digest(self, backend_fingerprint: str) -> str:
        """Hash of everything that decides the reply (the key is only a label)."""
        payload = {**asdict(self), "key": None, "backend": backend_fingerprint}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Completion:
    """One reply: its text and why generation ended (``stop``: finished; ``length``: hit max_tokens)."""

    text: str
    finish_reason: str = STOP

    @property
    def truncated(self) -> bool:
        return self.finish_reason == LENGTH


@dataclass(frozen=True)
class RequestFailed:
    """A request the backend gave up on (after its retries); ``reason`` is a short snake_case word."""

    reason: str
    detail: str = ""


Reply = list[Completion] | RequestFailed


@runtime_checkable
class GenerationBackend(Protocol):
    """Completes chat requests. ``stats`` counts events (requests, retries, HTTP statuses, failures)."""

    stats: Counter

    def fingerprint(self) -> str:
        """What decides the replies (model identity, fixed settings); part of every cache key."""
        ...

    def complete(self, requests: Sequence[ChatRequest]) -> list[Reply]:
        """One reply per request, in request order; never raises for a single request's failure.

        A backend that can report replies as they arrive also takes ``on_reply(index, reply)`` (the HTTP
        backend does); the reply cache then stores each one at once, so a kill loses only what was in flight.
        """
        ...

