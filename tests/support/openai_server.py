"""A real OpenAI-protocol HTTP server on loopback, with deterministic replies and injectable faults.

``POST /v1/chat/completions`` answers as the OpenAI API shapes it; each choice's text is a function of
(messages, seed, choice index, temperature) only (:func:`reply_for`), so a test can predict every reply.
Faults are chosen by the order in which *distinct* request bodies first arrive (a retry repeats its body):
with ``fail_every=k`` the first ``fail_attempts`` attempts of the k-th, 2k-th, ... distinct request get
``fail_status``, so exactly ``distinct // k`` requests fail, whatever order concurrent clients send them in
(``fail_status=200``: a 200 whose body is an HTML page, as a misbehaving proxy sends). ``slow_every`` does
the same with a first attempt that sleeps ``slow_s`` (longer than the client's timeout).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ERROR_TYPES = {400: "invalid_request_error", 429: "rate_limit_error"}


def reply_for(messages: list[dict], seed: int | None, index: int, temperature: float,
              max_tokens: int) -> tuple[str, str]:
    """(text, finish_reason) of one choice: 4-15 hex words and ``#### <number>``, cut at max_tokens words."""
    digest = hashlib.sha256(json.dumps([messages, seed, index, temperature], sort_keys=True).encode()).hexdigest()
    words = [digest[4 * i:4 * i + 4] for i in range(4 + int(digest[:2], 16) % 12)]
    words += ["####", str(int(digest[-6:], 16) % 1000)]
    if len(words) > max_tokens:
        return " ".join(words[:max_tokens]), "length"
    return " ".join(words), "stop"


class FakeOpenAIServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fail_every: int = 0, fail_status: int = 429, fail_attempts: int = 1, slow_every: int = 0,
                 slow_s: float = 0.0, retry_after: float | None = None, delay_s: float = 0.0,
                 malformed_every: int = 0, reverse_choices: bool = False, reply_fn=None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fail_every, self.fail_status, self.fail_attempts = fail_every, fail_status, fail_attempts
        self.slow_every, self.slow_s, self.retry_after = slow_every, slow_s, retry_after
        self.delay_s, self.malformed_every, self.reverse_choices = delay_s, malformed_every, reverse_choices
        self.reply_fn = reply_fn or reply_for  # (messages, seed, index, temperature, max_tokens) -> (text, finish)
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}/v1"
        self.lock = threading.Lock()
        self.calls = self.failures_sent = self.slow_sent = self.malformed_sent = 0
        self.in_flight = self.max_in_flight = 0
        self.bodies: list[dict] = []  # every chat request received, in arrival order
        self.answered: list[dict] = []  # every request answered with a completion, in the order the replies went
        self.arrivals: list[float] = []  # time.monotonic() of each
        self._attempts: dict[str, int] = {}  # body digest -> attempts so far
        self._ordinal: dict[str, int] = {}  # body digest -> 1-based order of first arrival

    def admit(self, body: dict) -> tuple[str, str, bool]:
        """Count one chat request; (fault: "fail"/"slow"/"", body digest, malformed reply?)."""
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self.lock:
            self.calls += 1
            self.bodies.append(body)
            self.arrivals.append(time.monotonic())
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            ordinal = self._ordinal.setdefault(key, len(self._ordinal) + 1)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.fail_every and ordinal % self.fail_every == 0 and attempt < self.fail_attempts:
                self.failures_sent += 1
                return "fail", key, False
            if self.slow_every and ordinal % self.slow_every == 0 and attempt == 0:
                self.slow_sent += 1
                return "slow", key, False
            malformed = bool(self.malformed_every) and ordinal % self.malformed_every == 0
            self.malformed_sent += malformed
            return "", key, malformed

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    server: FakeOpenAIServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, payload: dict | str, headers: dict[str, str] | None = None) -> None:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if isinstance(payload, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timed out) first
            self.close_connection = True

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        if status == 200:  # "fail" with a 200: a misbehaving proxy's page instead of a completion
            return self._send(200, f"<html><body>{message}</body></html>", headers)
        error = {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": None,
                 "code": None}
        self._send(status, {"error": error}, headers)

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/v1/models":
            return self._error(404, f"no route {self.path}")
        self._send(200, {"object": "list", "data": [
            {"id": "test-model", "object": "model", "created": 0, "owned_by": "tests"}]})

    def do_POST(self) -> None:
        body_bytes = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._error(404, f"no route {self.path}")
        try:
            body = json.loads(body_bytes)
            messages, model = body["messages"], body["model"]
        except (ValueError, KeyError, TypeError):
            return self._error(400, "body must be JSON with 'model' and 'messages'")
        server = self.server
        fault, key, malformed = server.admit(body)
        try:
            if fault == "fail":
                headers = {"Retry-After": str(server.retry_after)} if server.retry_after is not None else None
                return self._error(server.fail_status, f"injected failure {server.fail_status}", headers)
            time.sleep(server.delay_s * (1 + int(key[:2], 16) % 4) / 4)  # varied: replies finish out of order
            if fault == "slow":
                time.sleep(server.slow_s)
            reply = self._completion(body, messages, model, malformed)
            if server.reverse_choices:  # allowed by the protocol: clients must order choices by index
                reply["choices"].reverse()
            self._send(200, reply)
            with server.lock:
                server.answered.append(body)
        finally:
            server.leave()

    def _completion(self, body: dict, messages: list[dict], model: str, malformed: bool) -> dict:
        n, max_tokens = int(body.get("n") or 1), int(body.get("max_tokens") or 16)
        choices, completion_tokens = [], 0
        for index in range(n):
            text, finish = self.server.reply_fn(messages, body.get("seed"), index, body.get("temperature", 1.0),
                                                max_tokens)
            completion_tokens += len(text.split())
            choices.append({"index": index, "message": {"role": "assistant", "content": text},
                            "logprobs": None, "finish_reason": finish})
        if malformed and n > 1:  # a broken server: one choice short, the first without content
            choices = choices[:-1]
            choices[0]["message"]["content"] = None
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        return {"id": f"chatcmpl-{hashlib.sha256(json.dumps(body).encode()).hexdigest()[:24]}",
                "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}


@contextlib.contextmanager
def serve(fail_every: int = 0, fail_status: int = 429, slow_every: int = 0, slow_s: float = 0.0,
          retry_after: float | None = None, **options: object) -> Iterator[FakeOpenAIServer]:
    """A running server (``.base_url``, ``.calls``, ``.failures_sent``, ``.slow_sent``, ...), stopped on exit.

    ``options``: ``fail_attempts`` (failed attempts per failing request, 1), ``delay_s`` (reply delay, up to),
    ``reply_fn`` (a scripted teacher replacing :func:`reply_for`, same signature),
    ``malformed_every`` (every k-th distinct request with n > 1 gets one choice too few, the first without
    content), ``reverse_choices`` (choices listed in reverse index order).
    """
    server = FakeOpenAIServer(fail_every=fail_every, fail_status=fail_status, slow_every=slow_every, slow_s=slow_s,
                              retry_after=retry_after, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
