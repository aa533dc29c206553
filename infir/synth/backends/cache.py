"""A persistent reply cache in front of any backend: no request is sent twice, across kills and ablations.

The curation runner resumes whole shards, so without it a shard killed half-way would ask the teacher again
for every reply it already had, and a recipe that changes only a later stage (selection quotas) would
regenerate everything, since its cache key changes. Replies are stored in SQLite keyed by the request's
digest and the backend's fingerprint: each one as it arrives where the backend reports replies as they come
(``complete(..., on_reply=...)``, the HTTP backend: a killed run loses no reply it received), else all of a
call's replies in one transaction (the local backend decodes a call's requests together anyway). Failed
requests are not cached: a re-run asks again.
"""

from __future__ import annotations

import inspect
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from infir.synth.backends.base import ChatRequest, Completion, GenerationBackend, Reply


class CachedBackend:
    """Serves cached replies, sends the rest to ``backend`` and stores what comes back."""

    def __init__(self, backend: GenerationBackend, path: str | Path) -> None:
        self.backend = backend
        self.path = Path(path)
        self.stats: Counter = backend.stats
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_db": None, "_lock": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def fingerprint(self) -> str:
        return self.backend.fingerprint()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS replies (digest TEXT PRIMARY KEY, reply TEXT NOT NULL)")
            self._db.commit()
        return self._db

    def complete(self, requests: Sequence[ChatRequest]) -> list[Reply]:
        fingerprint = self.backend.fingerprint()
        digests = [r.digest(fingerprint) for r in requests]
        with self._lock:
            db = self._connection()
            found: dict[str, Reply] = {}
            for start in range(0, len(digests), 500):
                chunk = digests[start:start + 500]
                rows = db.execute(f"SELECT digest, reply FROM replies WHERE digest IN ({','.join('?' * len(chunk))})",
                                  chunk).fetchall()
                found.update({d: [Completion(**c) for c in json.loads(r)] for d, r in rows})
        missing = [i for i, d in enumerate(digests) if d not in found]
        self.stats["cache_hits"] += len(requests) - len(missing)
        if missing:
            asked = [requests[i] for i in missing]
            if "on_reply" in inspect.signature(self.backend.complete).parameters:
                fresh = self.backend.complete(asked, on_reply=lambda k, reply: self._store([(digests[missing[k]],
                                                                                              reply)]))
            else:
                fresh = self.backend.complete(asked)
                self._store([(digests[i], reply) for i, reply in zip(missing, fresh)])
            found.update((digests[i], reply) for i, reply in zip(missing, fresh))
        return [found[d] for d in digests]

    def _store(self, replies: Sequence[tuple[str, Reply]]) -> None:
        rows = [(digest, json.dumps([c.__dict__ for c in reply])) for digest, reply in replies
                if isinstance(reply, list)]
        if rows:
            with self._lock:
                db = self._connection()
                db.executemany("INSERT OR REPLACE INTO replies VALUES (?, ?)", rows)
                db.commit()
