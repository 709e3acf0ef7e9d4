"""Scoring an annotator's answer against a gold answer, one schema field at a time.

``gold_score(field, answer, gold)`` returns a score in [0, 1], or ``None`` when the gold answer
says nothing about the field (it is not scored):

=========  ===============================================================
choice     1 when equal (a multi-choice answer as a set), else 0
pairwise   1 when the ``choice`` is equal, else 0
rating     1 when every criterion the gold answer scores is scored equally
spans      overlap-match F1 over all labels (1.0 when both are empty)
text       normalized edit similarity
=========  ===============================================================

A missing answer scores 0 for a field the gold answer fills.
"""

from __future__ import annotations

from typing import Any

from projects.quality.metrics.spans import as_spans, pair_f1
from projects.quality.metrics.text import edit_similarity


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def gold_score(field: dict, answer: Any, gold: Any) -> float | None:
    ftype = field["type"]
    if gold is None or (_empty(gold) and ftype != "spans"):
        return None
    if _empty(answer) and ftype != "spans":
        return 0.0
    if ftype == "choice":
        if isinstance(gold, list) or isinstance(answer, list):
            as_set = lambda v: set(v) if isinstance(v, list) else {v}  # noqa: E731
            return float(as_set(answer) == as_set(gold))
        return float(answer == gold)
    if ftype == "pairwise":
        return float(isinstance(answer, dict) and isinstance(gold, dict) and answer.get("choice") == gold.get("choice"))
    if ftype == "rating":
        if not isinstance(gold, dict) or not isinstance(answer, dict):
            return 0.0
        return float(all(answer.get(c) == v for c, v in gold.items()))
    if ftype == "spans":
        f1 = pair_f1(as_spans(answer), as_spans(gold), "overlap")
        return 1.0 if f1 is None else f1
    if ftype == "text":
        return edit_similarity(str(answer), str(gold))
    return None
