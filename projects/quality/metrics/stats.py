"""Confidence intervals: Wilson score intervals for proportions, seeded percentile bootstrap."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def wilson_interval(successes: float, n: int, *, z: float = 1.959964) -> tuple[float, float] | None:
    """Wilson score interval for ``successes`` out of ``n`` (95% by default); ``None`` when n = 0.

    ``successes`` may be fractional (a sum of partial-credit scores), which treats each score as
    a Bernoulli mean: an approximation, fine for a dashboard.
    """
    if n <= 0:
        return None
    p = min(max(successes / n, 0.0), 1.0)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float | None],
    n: int,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``statistic(indices)`` over ``n`` resampled units.

    ``statistic`` receives an array of ``n`` unit indices drawn with replacement and returns the
    figure (or ``None`` when undefined on that resample; those draws are skipped). The same
    ``seed`` gives the same interval. ``None`` when n = 0 or fewer than half the draws are defined.
    """
    if n <= 0 or n_boot <= 0:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        value = statistic(rng.integers(0, n, size=n))
        if value is not None and not math.isnan(value):
            values.append(value)
    if len(values) < n_boot / 2:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
