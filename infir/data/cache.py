"""Content-addressed artifact cache.

An artifact (trained tokenizer, token shards, curated shards) lives in
``<root>/<kind>/<key>/`` where ``key`` hashes everything that made it. A
``manifest.json`` beside it records the inputs. Artifacts are built in a
temporary sibling directory and renamed into place, so a killed build never
leaves a half-written artifact that later runs would trust.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def content_key(spec: Any) -> str:
    """Stable short hash of a JSON-serialisable spec."""
    blob = json.dumps(spec, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def cached_artifact(root: str | Path, kind: str, spec: dict[str, Any],
                    build: Callable[[Path], dict[str, Any] | None]) -> Path:
    """Return the artifact directory for ``spec``, building it with ``build(tmp_dir)`` if absent.

    ``build`` writes files into the directory it is given and may return extra
    manifest fields (counts, timings). Concurrent builders (DDP ranks, sweep
    jobs) each build privately; the first rename wins and the others discard.
    """
    final = Path(root) / kind / content_key(spec)
    if (final / MANIFEST).is_file():
        return final
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.time()
    extra = build(tmp) or {}
    manifest = {"kind": kind, "spec": spec, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "build_seconds": round(time.time() - started, 3), **extra}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    try:
        os.rename(tmp, final)
    except OSError:  # another process finished first: theirs is identical by construction
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final / MANIFEST).is_file():
            raise
    log.info("built %s artifact %s in %.1fs", kind, final, time.time() - started)
    return final
