"""Span agreement: F1 per label between two annotators, by exact or overlap match.

A span is ``(start, end, label)`` with ``end`` exclusive. Matching is one-to-one within a label:
*exact* pairs identical spans; *overlap* pairs spans that share at least one character, largest
overlap first (ties by position), so one long span cannot match several short ones.
Per label, F1 = 2·matches / (spans of A + spans of B), which is symmetric in A and B.
``SpanTally`` sums matches and counts over many (task, annotator pair) comparisons (micro F1).
A label nobody used has no F1 (``None``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Span = tuple[int, int, str]
Mode = Literal["exact", "overlap"]


def as_spans(value: Iterable[dict] | None) -> list[Span]:
    """Spans from an annotation result's list of ``{"start", "end", "label"}`` objects."""
    return [(int(s["start"]), int(s["end"]), str(s["label"])) for s in (value or [])]


def _matches(a: list[tuple[int, int]], b: list[tuple[int, int]], mode: Mode) -> int:
    if mode == "exact":
        return len(set(a) & set(b))
    candidates = []
    for i, (s1, e1) in enumerate(a):
        for j, (s2, e2) in enumerate(b):
            overlap = min(e1, e2) - max(s1, s2)
            if overlap > 0:
                candidates.append((-overlap, s1, s2, i, j))
    candidates.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    for _, _, _, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
    return len(used_a)


def span_match_counts(a: Iterable[Span], b: Iterable[Span], mode: Mode = "exact") -> dict[str, tuple[int, int, int]]:
    """``{label: (matches, spans in a, spans in b)}`` for the labels either side used."""
    by_a: dict[str, list[tuple[int, int]]] = defaultdict(list)
    by_b: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for s, e, label in set(a):
        by_a[label].append((s, e))
    for s, e, label in set(b):
        by_b[label].append((s, e))
    return {
        label: (_matches(by_a[label], by_b[label], mode), len(by_a[label]), len(by_b[label]))
        for label in sorted(set(by_a) | set(by_b))
    }


def span_f1(a: Iterable[Span], b: Iterable[Span], mode: Mode = "exact") -> dict[str, float]:
    """F1 per label between two annotators' spans on one text."""
    tally = SpanTally()
    tally.add(a, b, mode)
    return {k: v for k, v in tally.f1(mode).items() if v is not None}


def pair_f1(a: Iterable[Span], b: Iterable[Span], mode: Mode = "overlap") -> float | None:
    """Micro F1 over all labels between two annotators on one text; ``None`` when neither marked a span."""
    return f1_of_counts(span_match_counts(a, b, mode))


def f1_of_counts(counts: dict[str, tuple[int, int, int]]) -> float | None:
    """Micro F1 from ``span_match_counts`` output; ``None`` when there are no spans at all."""
    total = sum(na + nb for _, na, nb in counts.values())
    if not total:
        return None
    return 2 * sum(m for m, _, _ in counts.values()) / total


@dataclass
class SpanTally:
    """Matches and span counts per label and mode, summed over comparisons."""

    counts: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    comparisons: int = 0

    def add(self, a: Iterable[Span], b: Iterable[Span], mode: Mode | None = None) -> dict:
        """Compare two annotators' spans; returns ``{mode: span_match_counts}`` for the modes added."""
        a, b = list(a), list(b)
        self.comparisons += 1
        out = {}
        for m in (mode,) if mode else ("exact", "overlap"):
            out[m] = counts = span_match_counts(a, b, m)
            for label, (matches, na, nb) in counts.items():
                row = self.counts[(m, label)]
                row[0] += matches
                row[1] += na + nb
        return out

    def f1(self, mode: Mode) -> dict[str, float | None]:
        return {
            label: (2 * row[0] / row[1] if row[1] else None)
            for (m, label), row in sorted(self.counts.items())
            if m == mode
        }

    def micro_f1(self, mode: Mode) -> float | None:
        rows = [row for (m, _), row in self.counts.items() if m == mode]
        total = sum(r[1] for r in rows)
        return 2 * sum(r[0] for r in rows) / total if total else None
