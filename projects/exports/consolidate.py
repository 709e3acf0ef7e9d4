"""Consolidated labels: one result per task from several annotators' results (pure, no ORM).

Per field type, over the annotators' *effective* results (a reviewer's correction replaces the
annotation it fixed):

- choice, text, pairwise: majority vote (``projects.quality.consensus.majority_vote``) on the
  value: a multi-choice list votes as a set, a pairwise field on its choice (the reason kept is
  the first one given with the winning choice); ties go to the smallest value in sort order.
- spans: a span (start, end, label) is kept when more than half of the annotators marked it.
- rating: per criterion, the mean score rounded to 3 decimals.

Confidence is the winner's share of votes (for spans, the mean share of kept spans, 1.0 when no
span is kept by agreement on "none"); the task's confidence is the lowest over its fields.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from projects.quality.consensus import majority_vote as vote_majority


def _vote_key(field: dict, value: Any) -> Any:
    if field["type"] == "pairwise":
        return value.get("choice") if isinstance(value, dict) else None
    if isinstance(value, list):
        return tuple(sorted(map(str, value)))
    return value if isinstance(value, str | int | float | bool) else None


def _vote(field: dict, values: list[Any]) -> tuple[Any, float]:
    keys = [_vote_key(field, v) for v in values]
    winner = vote_majority({0: [k for k in keys if k is not None]}).get(0)
    if winner is None:
        return None, 0.0
    for key, value in zip(keys, values, strict=True):  # the first value that voted for the winner
        if key == winner.label:
            return value, winner.confidence
    return None, 0.0  # unreachable


def _spans(values: list[list[dict]]) -> tuple[list[dict], float]:
    voters = len(values)
    counts: Counter = Counter()
    first: dict[tuple, dict] = {}
    for spans in values:
        for span in {(s["start"], s["end"], s["label"]): s for s in spans or []}.values():
            key = (span["start"], span["end"], span["label"])
            counts[key] += 1
            first.setdefault(key, span)
    kept = sorted(key for key, n in counts.items() if n * 2 > voters)
    if not kept:
        empty = sum(1 for spans in values if not spans)
        return [], empty / voters if counts else 1.0
    return [first[k] for k in kept], sum(counts[k] for k in kept) / (len(kept) * voters)


def _rating(values: list[dict]) -> tuple[dict, float]:
    sums: dict[str, list[float]] = {}
    for value in values:
        for criterion, score in (value or {}).items():
            if isinstance(score, int | float):
                sums.setdefault(criterion, []).append(score)
    return {c: round(sum(v) / len(v), 3) for c, v in sums.items()}, 1.0


def majority_vote(results: list[dict], schema: dict) -> tuple[dict, float]:
    """The consolidated result of ``results`` (in submission order) and its confidence."""
    if not results:
        return {}, 0.0
    if len(results) == 1:
        return dict(results[0]), 1.0
    label: dict[str, Any] = {}
    confidences: list[float] = []
    for field in schema.get("fields", []):
        name = field["name"]
        values = [r[name] for r in results if name in r and r[name] is not None]
        if not values:
            continue
        if field["type"] == "spans":
            value, conf = _spans(values)
        elif field["type"] == "rating":
            value, conf = _rating(values)
        else:
            value, conf = _vote(field, values)
        label[name] = value
        confidences.append(conf * len(values) / len(results))
    return label, round(min(confidences), 4) if confidences else 0.0
