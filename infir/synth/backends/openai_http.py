"""A generation backend that talks the OpenAI chat-completions protocol over HTTP.

Why: one client for every teacher, because vLLM, SGLang, TGI and the OpenAI API all serve this protocol,
so the teacher can run anywhere (another node, another cluster) while synthesis runs on CPUs.
The paper's teacher, Qwen2.5-32B-Instruct (PAPER.md §4), is served on four GPUs with vLLM by running
``vllm serve Qwen/Qwen2.5-32B-Instruct --tensor-parallel-size 4 --port 8000`` and pointing ``base_url``
at ``http://localhost:8000/v1`` (the key is then any string; ``EMPTY`` by convention).

The client's own retries are off (``max_retries=0``): this backend retries 429, 5xx, 408/409, timeouts and
connection errors itself, with exponential backoff and full jitter drawn from a generator seeded by the
request's digest (or the server's ``Retry-After``), so every retry is counted in :attr:`stats`.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from infir.synth.backends.base import STOP, ChatRequest, Completion, Reply, RequestFailed

RETRIED_4XX = (408, 409, 429)  # request timeout, conflict, rate limit: the same request may succeed later


class _Interval:
    """At most ``rate`` starts per second across all threads: each start takes the next free time slot."""

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate
        self.next_slot = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.gap
        time.sleep(max(0.0, slot - now))


def _retry_after_s(headers: Any) -> float | None:
    """The server's ``Retry-After`` (``retry-after-ms``, seconds, or an HTTP date) in seconds, if any."""
    if headers.get("retry-after-ms") is not None:
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        date = email.utils.parsedate_tz(value)
        return None if date is None else email.utils.mktime_tz(date) - time.time()


def _classify(error: Exception) -> tuple[str, bool, float | None]:
    """(cause, retryable, server-requested delay) of one failed attempt."""
    if isinstance(error, ValueError):  # a 200 that is not a chat completion (a proxy's page, cut JSON)
        return "bad_reply", True, None
    if isinstance(error, openai.APITimeoutError):  # a subclass of APIConnectionError: test it first
        return "timeout", True, None
    if isinstance(error, openai.APIConnectionError):
        return "connection_error", True, None
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        cause = "bad_request" if status == 400 else f"http_{status}"
        return cause, status in RETRIED_4XX or status >= 500, _retry_after_s(error.response.headers)
    return "api_error", False, None  # any other client error (e.g. a strict-validation failure)


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server, ``max_concurrency`` requests in flight at most."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", max_concurrency: int = 8, max_retries: int = 5,
                 backoff_base_s: float = 0.5, backoff_max_s: float = 30.0, timeout_s: float = 120.0,
                 requests_per_second: float | None = None, extra_body: dict | None = None) -> None:
        if max_concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise ValueError("generator: need max_concurrency >= 1, max_retries >= 0 and timeout_s > 0")
        if requests_per_second is not None and requests_per_second <= 0:
            raise ValueError(f"generator: requests_per_second must be > 0, got {requests_per_second}")
        self.base_url, self.model = base_url, model
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env) or "EMPTY"
        self.max_concurrency, self.max_retries = int(max_concurrency), int(max_retries)
        self.backoff_base_s, self.backoff_max_s = float(backoff_base_s), float(backoff_max_s)
        self.timeout_s, self.requests_per_second = float(timeout_s), requests_per_second
        self.extra_body = dict(extra_body) if extra_body else None
        self.stats: Counter = Counter()
        self._setup()

    def _setup(self) -> None:
        """Thread-shared state that a pickled copy (a worker process) rebuilds instead of carrying."""
        self._lock = threading.Lock()
        self._limiter = _Interval(self.requests_per_second) if self.requests_per_second else None
        self._client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0,
                                     timeout=self.timeout_s)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_limiter", "_client")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._setup()

    def close(self) -> None:
        self._client.close()

    def fingerprint(self) -> str:
        extra = json.dumps(self.extra_body, sort_keys=True) if self.extra_body else ""
        return f"openai:{self.model}{extra}"

    def complete(self, requests: Sequence[ChatRequest],
                 on_reply: Callable[[int, Reply], None] | None = None) -> list[Reply]:
        """Replies in request order; ``on_reply(index, reply)`` is called as each one arrives (from a worker
        thread), so a cache can keep what a killed run already received."""
        if not requests:
            return []

        def one(indexed: tuple[int, ChatRequest]) -> Reply:
            reply = self._complete_one(indexed[1])
            if on_reply is not None:
                on_reply(indexed[0], reply)
            return reply

        with ThreadPoolExecutor(min(self.max_concurrency, len(requests)), "openai-backend") as pool:
            return list(pool.map(one, enumerate(requests)))  # map keeps request order

    def _count(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self.stats[key] += amount

    def _backoff_s(self, rng: random.Random, retry: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.backoff_max_s)
        return rng.uniform(0.0, min(self.backoff_max_s, self.backoff_base_s * 2 ** retry))  # full jitter

    def _complete_one(self, request: ChatRequest) -> Reply:
        self._count("requests")
        rng = random.Random(request.digest(self.fingerprint()))
        for attempt in range(self.max_retries + 1):
            if self._limiter is not None:
                self._limiter.wait()
            self._count("attempts")
            try:
                reply = self._client.chat.completions.create(
                    model=self.model, messages=request.message_dicts, n=request.n,
                    max_tokens=request.max_tokens, temperature=request.temperature, top_p=request.top_p,
                    seed=request.seed, extra_body=self.extra_body)
                if not isinstance(reply, ChatCompletion):  # the client returns non-JSON bodies as text
                    raise ValueError(f"not a chat completion: {str(reply)[:100]!r}")
            except (openai.OpenAIError, ValueError) as error:
                cause, retryable, retry_after = _classify(error)
                self._count(cause)
                if not retryable or attempt == self.max_retries:
                    self._count(f"failed_{cause}")
                    return RequestFailed(cause, f"{request.key}: {type(error).__name__}: {error}"[:500])
                self._count("retries")
                self._count(f"retry_{cause}")
                time.sleep(self._backoff_s(rng, attempt, retry_after))
            else:
                return self._completions(request, reply)
        raise AssertionError("unreachable: the last attempt returns")

    def _completions(self, request: ChatRequest, reply: Any) -> list[Completion]:
        """One completion per choice, in index order; odd replies are counted, the caller drops bad ones."""
        choices = sorted(reply.choices or [], key=lambda choice: choice.index)
        if len(choices) != request.n:
            self._count("reply_wrong_n")
        completions = []
        for choice in choices:
            content = choice.message.content if choice.message is not None else None
            if content is None:
                self._count("reply_no_content")
            completions.append(Completion(content or "", choice.finish_reason or STOP))
        self._count("completions", len(completions))
        if reply.usage is not None:
            self._count("prompt_tokens", reply.usage.prompt_tokens or 0)
            self._count("completion_tokens", reply.usage.completion_tokens or 0)
        return completions
