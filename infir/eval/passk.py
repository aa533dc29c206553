"""pass@k with the unbiased estimator of Chen et al. (2021), the convention HumanEval/MBPP report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` samples drawn from ``n`` (``c`` correct) passes.

    1 - C(n-c, k) / C(n, k), computed as a product so large ``n`` does not overflow.
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= correct <= samples, got correct={c}, samples={n}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(samples: Sequence[int], correct: Sequence[int], k: int) -> float:
    """pass@k averaged over problems (each with its own sample and correct counts)."""
    if len(samples) != len(correct):
        raise ValueError("samples and correct must have one entry per problem")
    if not samples:
        return float("nan")
    return float(np.mean([pass_at_k(n, c, k) for n, c in zip(samples, correct)]))
