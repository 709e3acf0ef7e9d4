"""Agreement on free text: normalized edit similarity (RapidFuzz's Levenshtein, in C++).

``edit_similarity(a, b) = 1 − levenshtein(a, b) / max(len(a), len(b))``, in [0, 1]; two empty
strings are identical (1.0). Lengths and edits count Unicode code points.
"""

from __future__ import annotations

from collections.abc import Iterable

from rapidfuzz.distance import Levenshtein


def edit_similarity(a: str, b: str) -> float:
    if not a and not b:
        return 1.0
    return float(Levenshtein.normalized_similarity(a, b))


def mean_pairwise_similarity(texts: Iterable[str | None]) -> float | None:
    """Mean edit similarity over every pair of the given texts; ``None`` with fewer than two."""
    present = [t for t in texts if t is not None]
    pairs = [(a, b) for i, a in enumerate(present) for b in present[i + 1 :]]
    if not pairs:
        return None
    return sum(edit_similarity(a, b) for a, b in pairs) / len(pairs)
