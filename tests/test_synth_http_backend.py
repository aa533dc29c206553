"""The OpenAI-compatible HTTP backend against a real loopback server (tests/support/openai_server.py).

Replies must not depend on what went wrong on the way: 429s, 5xx, timeouts and retries give the same
replies as a healthy server, every retry is counted, and a request that keeps failing is a RequestFailed.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pickle  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from support.openai_server import reply_for, serve  # noqa: E402

from infir.synth.backends import ChatRequest, Completion, GenerationBackend, RequestFailed  # noqa: E402
from infir.synth.backends.openai_http import OpenAIBackend  # noqa: E402

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 10.0}  # quick retries in tests
CONFIG = Path(__file__).resolve().parents[1] / "conf" / "synth" / "generator" / "openai.yaml"


def make_requests(count: int = 12, n: int = 3) -> list[ChatRequest]:
    """Varied prompts, seeds and temperatures; every fourth has a max_tokens short enough to cut replies."""
    return [ChatRequest(key=f"item{i}", messages=(("system", "Solve it."), ("user", f"What is {i} + {i}?")),
                        n=n, max_tokens=3 if i % 4 == 3 else 64, temperature=0.0 if i % 2 else 0.7, seed=i)
            for i in range(count)]


def expected(request: ChatRequest) -> list[Completion]:
    return [Completion(*reply_for(request.message_dicts, request.seed, index, request.temperature,
                                  request.max_tokens)) for index in range(request.n)]


def run(base_url: str, requests: list[ChatRequest], **options) -> tuple[list, OpenAIBackend]:
    backend = OpenAIBackend(base_url=base_url, model="test-model", **{**FAST, **options})
    try:
        return backend.complete(requests), backend
    finally:
        backend.close()


def test_healthy_server_replies_in_request_order_and_deterministically():
    requests = make_requests()
    with serve(delay_s=0.05) as server:  # varied delays: replies arrive out of order
        replies, backend = run(server.base_url, requests, max_concurrency=4)
        assert server.calls == len(requests)
    assert isinstance(backend, GenerationBackend)
    assert replies == [expected(r) for r in requests]
    assert all(len(reply) == 3 for reply in replies)
    assert any(c.truncated for reply in replies for c in reply) and not all(c.truncated for c in replies[0])
    assert backend.stats["retries"] == 0 and backend.stats["requests"] == len(requests)
    assert backend.stats["completions"] == 3 * len(requests)
    with serve() as server:
        again, _ = run(server.base_url, requests, max_concurrency=2)
    assert again == replies


def test_sends_sampling_settings_and_extra_body():
    request = ChatRequest(key="k", messages=(("user", "hi"),), n=2, max_tokens=7, temperature=0.3, top_p=0.9,
                          seed=11)
    with serve() as server:
        run(server.base_url, [request], extra_body={"top_k": 20})
        (body,) = server.bodies
    assert body["messages"] == [{"role": "user", "content": "hi"}] and body["model"] == "test-model"
    assert {k: body[k] for k in ("n", "max_tokens", "temperature", "top_p", "seed", "top_k")} == {
        "n": 2, "max_tokens": 7, "temperature": 0.3, "top_p": 0.9, "seed": 11, "top_k": 20}


def test_choices_are_put_in_index_order():
    requests = make_requests(count=3)
    with serve(reverse_choices=True) as server:
        replies, _ = run(server.base_url, requests)
    assert replies == [expected(r) for r in requests]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retried_failures_give_the_healthy_replies_and_are_counted(status):
    requests = make_requests()
    with serve(fail_every=3, fail_status=status) as server:
        replies, backend = run(server.base_url, requests)
        assert server.failures_sent == len(requests) // 3
        assert server.calls == len(requests) + server.failures_sent
    assert replies == [expected(r) for r in requests]
    assert backend.stats["retries"] == server.failures_sent == backend.stats[f"retry_http_{status}"]
    assert not any(key.startswith("failed_") for key in backend.stats)


def test_a_reply_that_is_not_a_completion_is_retried():
    requests = make_requests(count=6)
    with serve(fail_every=2, fail_status=200) as server:  # a 200 with an HTML page
        replies, backend = run(server.base_url, requests)
        assert server.failures_sent == 3
    assert replies == [expected(r) for r in requests] and backend.stats["retry_bad_reply"] == 3


def test_retry_after_is_honoured_and_capped():
    requests = make_requests(count=2)
    with serve(fail_every=1, fail_status=429, retry_after=0.4) as server:
        start = time.monotonic()
        replies, backend = run(server.base_url, requests, backoff_base_s=0.001, backoff_max_s=5.0)
        assert time.monotonic() - start >= 0.4  # the jittered backoff alone would be ~1 ms
    assert replies == [expected(r) for r in requests] and backend.stats["retry_http_429"] == 2
    with serve(fail_every=1, fail_status=429, retry_after=60) as server:
        start = time.monotonic()
        replies, _ = run(server.base_url, requests, backoff_max_s=0.05)
        assert time.monotonic() - start < 5 and replies == [expected(r) for r in requests]


def test_timeouts_are_retried():
    requests = make_requests(count=6)
    with serve(slow_every=2, slow_s=1.5) as server:
        replies, backend = run(server.base_url, requests, timeout_s=0.3)
        assert server.slow_sent == 3
    assert replies == [expected(r) for r in requests]
    assert backend.stats["retry_timeout"] == backend.stats["retries"] == 3


def test_a_server_that_always_fails_gives_request_failed_per_request():
    requests = make_requests(count=5)
    start = time.monotonic()
    with serve(fail_every=1, fail_status=500, fail_attempts=10**6) as server:
        replies, backend = run(server.base_url, requests, max_retries=2)
        assert server.calls == 3 * len(requests)
    assert time.monotonic() - start < 5
    assert [type(r) for r in replies] == [RequestFailed] * len(requests)
    assert {r.reason for r in replies} == {"http_500"}
    assert backend.stats["failed_http_500"] == len(requests) and backend.stats["retries"] == 2 * len(requests)


def test_an_unreachable_server_gives_connection_errors():
    with socket.socket() as probe:  # a port that was free a moment ago and is closed now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    replies, backend = run(f"http://127.0.0.1:{port}/v1", make_requests(count=3), max_retries=1)
    assert time.monotonic() - start < 5
    assert replies == [RequestFailed("connection_error", r.detail) for r in replies]
    assert backend.stats["failed_connection_error"] == 3 and backend.stats["retry_connection_error"] == 3


@pytest.mark.parametrize("status, reason", [(400, "bad_request"), (404, "http_404")])
def test_client_errors_are_not_retried(status, reason):
    requests = make_requests(count=4)
    with serve(fail_every=1, fail_status=status, fail_attempts=10**6) as server:
        replies, backend = run(server.base_url, requests, max_retries=3)
        assert server.calls == len(requests)
    assert [r.reason for r in replies] == [reason] * len(requests)
    assert backend.stats["retries"] == 0 and backend.stats[f"failed_{reason}"] == len(requests)


def test_requests_in_flight_never_exceed_max_concurrency():
    with serve(delay_s=0.2) as server:
        replies, _ = run(server.base_url, make_requests(count=12), max_concurrency=3)
        assert server.max_in_flight == 3  # bounded, and the bound is used
    assert all(isinstance(r, list) for r in replies)


def test_requests_per_second_limit_is_shared_by_all_threads():
    with serve() as server:
        start = time.monotonic()
        run(server.base_url, make_requests(count=6), max_concurrency=6, requests_per_second=20)
        elapsed = time.monotonic() - start
        gaps = [b - a for a, b in zip(server.arrivals, server.arrivals[1:])]
    assert elapsed >= 5 / 20 and min(gaps) >= 0.04


def test_malformed_replies_are_counted_and_kept():
    requests = make_requests(count=4)
    with serve(malformed_every=2) as server:
        replies, backend = run(server.base_url, requests)
    # the 2nd and 4th requests to *arrive* get broken replies; arrival order is not request order
    short = [reply for reply in replies if len(reply) == 2]
    assert len(short) == 2 and all(reply[0].text == "" for reply in short)
    assert backend.stats["reply_wrong_n"] == 2 and backend.stats["reply_no_content"] == 2


def test_fingerprint_is_model_identity_not_address(monkeypatch):
    first = OpenAIBackend(base_url="http://a:1/v1", model="m")
    assert first.fingerprint() == OpenAIBackend(base_url="http://b:2/v1", model="m").fingerprint() == "openai:m"
    assert OpenAIBackend(base_url="http://a:1/v1", model="m", extra_body={"top_k": 20}).fingerprint() != "openai:m"
    assert OpenAIBackend(base_url="http://a:1/v1", model="other").fingerprint() != "openai:m"
    monkeypatch.setenv("MY_KEY", "secret")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert OpenAIBackend(base_url="http://a:1/v1", model="m", api_key_env="MY_KEY").api_key == "secret"
    assert first.api_key == "EMPTY"


def test_a_pickled_backend_works_and_keeps_its_stats():
    requests = make_requests(count=2)
    with serve() as server:
        _, backend = run(server.base_url, requests)
        copy = pickle.loads(pickle.dumps(backend))  # as a spawned curation worker receives it
        assert copy.complete(requests) == [expected(r) for r in requests]
    assert copy.stats["requests"] == 4 and backend.stats["requests"] == 2


def test_config_instantiates_the_backend():
    cfg = OmegaConf.load(CONFIG)
    cfg.extra_body = {"top_k": 20}
    backend = instantiate(cfg)
    assert isinstance(backend, OpenAIBackend) and backend.model == "Qwen/Qwen2.5-32B-Instruct"
    assert type(backend.extra_body) is dict and backend.base_url == "http://localhost:8000/v1"
    assert backend.fingerprint() == 'openai:Qwen/Qwen2.5-32B-Instruct{"top_k": 20}'
