"""Inter-annotator agreement coefficients for categorical and numeric labels.

A *unit* is one item (a task, or a task × rating criterion) and the values the annotators who
saw it gave; ``None`` marks a missing value. Annotators need not label every unit.

- ``cohen_kappa(a, b)``: two annotators, paired labels (Cohen 1960).
- ``fleiss_kappa(units)``: any number of raters per unit; with a constant number of raters it is
  Fleiss (1971); units with fewer than two values are ignored.
- ``krippendorff_alpha(units, level)``: nominal, ordinal, interval or ratio, missing values
  allowed (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability"), via the coincidence
  matrix, vectorised with numpy so 100,000 units take milliseconds.
- ``pairwise_alpha(units)``: alpha for A/B preferences with ties, on the interval scale
  a = -1, tie = 0, b = +1; ``both_bad`` expresses no preference and counts as a tie.

Undefined → ``None``: no unit with two values (one annotator, no overlap). Every pairable value
identical → 1.0 (the chance-corrected formula is 0/0; see ``projects.quality.metrics``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Literal

import numpy as np

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")
PAIRWISE_SCALE = {"a": -1, "tie": 0, "both_bad": 0, "b": 1}


def _present(values: Iterable) -> list:
    return [v for v in values if v is not None]


def cohen_kappa(a: Sequence[Hashable | None], b: Sequence[Hashable | None]) -> float | None:
    """Cohen's kappa for two annotators' labels on the same items (pairs with a ``None`` dropped)."""
    if len(a) != len(b):
        raise ValueError("cohen_kappa needs two sequences of the same length")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(x == y for x, y in pairs) / n
    ca, cb = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    expected = sum(ca[k] * cb.get(k, 0) for k in ca) / (n * n)
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)


def value_counts(
    units: Iterable[Iterable[Hashable | None]], domain: Sequence[Hashable] | None = None
) -> tuple[np.ndarray, list]:
    """Units → (counts matrix units × values, the values). Values outside ``domain`` are added, sorted."""
    unit_lists = [_present(u) for u in units]
    values = list(domain) if domain is not None else []
    known = set(values)
    extra = {v for u in unit_lists for v in u if v not in known}
    values += sorted(extra, key=lambda v: (type(v).__name__, v) if isinstance(v, (int, float, str)) else ("", repr(v)))
    index = {v: i for i, v in enumerate(values)}
    rows = np.fromiter((i for i, u in enumerate(unit_lists) for _ in u), dtype=np.int64)
    cols = np.fromiter((index[v] for u in unit_lists for v in u), dtype=np.int64)
    size = len(unit_lists) * len(values)
    counts = np.bincount(rows * len(values) + cols, minlength=size).astype(float).reshape(len(unit_lists), len(values))
    return counts, values


def fleiss_kappa_from_counts(counts: np.ndarray) -> float | None:
    """Fleiss' kappa from a units × categories count matrix (rows with fewer than 2 ratings dropped)."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2:
        return None
    n_i = counts.sum(axis=1)
    counts, n_i = counts[n_i >= 2], n_i[n_i >= 2]
    if not len(counts):
        return None
    p_i = ((counts * counts).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    p_k = counts.sum(axis=0) / n_i.sum()
    p_e = float((p_k * p_k).sum())
    if p_e >= 1.0 - 1e-12:
        return 1.0
    return (p_bar - p_e) / (1.0 - p_e)


def fleiss_kappa(units: Iterable[Iterable[Hashable | None]]) -> float | None:
    """Fleiss' kappa from the labels given to each unit."""
    counts, _ = value_counts(units)
    return fleiss_kappa_from_counts(counts)


def _delta2(values: Sequence, level: str, totals: np.ndarray) -> np.ndarray:
    """The squared difference function δ² between every pair of values, for a level of measurement."""
    k = len(values)
    if level == "nominal":
        return 1.0 - np.eye(k)
    x = np.asarray(values, dtype=float)
    if level == "interval":
        return (x[:, None] - x[None, :]) ** 2
    if level == "ratio":
        s = x[:, None] + x[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(s == 0, 0.0, (x[:, None] - x[None, :]) / s)
        return d**2
    if level == "ordinal":
        order = np.argsort(x, kind="stable")
        n_sorted = totals[order]
        cum = np.cumsum(n_sorted)
        # Sum of n_g from rank c to rank k (inclusive), minus half the end points' own counts.
        lo = np.minimum.outer(np.arange(k), np.arange(k))
        hi = np.maximum.outer(np.arange(k), np.arange(k))
        between = cum[hi] - cum[lo] + n_sorted[lo]
        d_sorted = (between - (n_sorted[:, None] + n_sorted[None, :]) / 2) ** 2
        d = np.empty_like(d_sorted)
        d[np.ix_(order, order)] = d_sorted
        return d
    raise ValueError(f"unknown level of measurement {level!r}; use one of {', '.join(LEVELS)}")


def pairable(counts: np.ndarray) -> np.ndarray:
    """The rows of a units × values count matrix with at least two values (the pairable units)."""
    counts = np.asarray(counts, dtype=float)
    return counts[counts.sum(axis=1) >= 2]


def alpha_from_counts(
    counts: np.ndarray, values: Sequence, level: str = "nominal", *, weights: np.ndarray | None = None
) -> float | None:
    """Krippendorff's alpha from a units × values count matrix (see ``value_counts``).

    ``weights`` counts each unit that many times (the bootstrap passes resampling multiplicities
    instead of copying rows); with weights, ``counts`` must already be ``pairable(counts)``.
    """
    c = pairable(counts) if weights is None else counts
    if not len(c):
        return None
    m = c.sum(axis=1)
    scale = 1.0 / (m - 1) if weights is None else weights / (m - 1)
    weighted = c * scale[:, None]
    coincidence = weighted.T @ c - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = float(n_c.sum())
    if n <= 0:
        return None
    d2 = _delta2(values, level, n_c)
    expected = float((np.outer(n_c, n_c) * d2).sum())
    if expected <= 1e-12:
        return 1.0
    return 1.0 - (n - 1.0) * float((coincidence * d2).sum()) / expected


def krippendorff_alpha(
    units: Iterable[Iterable[Hashable | None]], level: Level = "nominal", *, domain: Sequence | None = None
) -> float | None:
    """Krippendorff's alpha for the values given to each unit; ``None`` marks a missing value."""
    if level not in LEVELS:
        raise ValueError(f"unknown level of measurement {level!r}; use one of {', '.join(LEVELS)}")
    counts, values = value_counts(units, domain)
    return alpha_from_counts(counts, values, level)


def pairwise_alpha(units: Iterable[Iterable[str | None]]) -> float | None:
    """Alpha (interval) for pairwise preferences: a = -1, tie = both_bad = 0, b = +1."""
    mapped = [[PAIRWISE_SCALE[v] for v in u if v is not None] for u in units]
    return krippendorff_alpha(mapped, "interval", domain=[-1, 0, 1])


def observed_agreement(labels: Iterable[Hashable | None]) -> float | None:
    """Share of agreeing pairs among one unit's labels; ``None`` with fewer than two labels."""
    present = _present(labels)
    m = len(present)
    if m < 2:
        return None
    return sum(c * (c - 1) for c in Counter(present).values()) / (m * (m - 1))


def numeric_agreement(scores: Iterable[float | None], span: float) -> float | None:
    """1 − mean absolute difference over pairs, scaled by the scale's width; ``None`` below two scores."""
    present = [float(s) for s in scores if s is not None]
    if len(present) < 2 or span <= 0:
        return None
    diffs = [abs(a - b) for i, a in enumerate(present) for b in present[i + 1 :]]
    return 1.0 - sum(diffs) / len(diffs) / span
