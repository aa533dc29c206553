"""Deterministic, content-keyed split assignment.

Why hashing and not shuffling: a document's split must not change when other
documents are added or removed, or held-out text could drift into training.
"""

from __future__ import annotations

import hashlib


def unit_interval(key: str, salt: str) -> float:
    """Map (salt, key) to a stable float in [0, 1)."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_split(key: str, salt: str, fractions: dict[str, float], default: str) -> str:
    """Pick a split for ``key``: each named split takes its fraction, the rest go to ``default``."""
    total = sum(fractions.values())
    if total > 1.0 or any(f < 0 for f in fractions.values()):
        raise ValueError(f"split fractions must be >= 0 and sum to <= 1, got {fractions}")
    u = unit_interval(key, salt)
    edge = 0.0
    for name, fraction in sorted(fractions.items()):
        edge += fraction
        if u < edge:
            return name
    return default
