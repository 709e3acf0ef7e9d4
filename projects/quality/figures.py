"""Summaries for the dashboard: gold accuracy, progress, throughput, time per task. Pure functions
over the compact data ``compute.Accumulator`` collects."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable

from projects.quality.metrics.stats import wilson_interval

LEAD_TIME_BINS = [0, 10, 30, 60, 120, 300, 600, 1800]
SKILL_LEVELS = ("expert", "generalist", "none", "any")


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def accuracy(scores: list[float]) -> dict:
    """Mean score with its Wilson interval (scores in [0, 1]; partial credit counts fractionally)."""
    n = len(scores)
    total = sum(scores)
    interval = wilson_interval(total, n)
    return {
        "answers": n,
        "accuracy": _r(total / n) if n else None,
        "low": _r(interval[0]) if interval else None,
        "high": _r(interval[1]) if interval else None,
    }


def gold_figures(
    gold: Iterable[tuple[int, str, str, dict[str, float]]], usernames: dict[int, str]
) -> tuple[dict, dict[int, dict]]:
    """(project summary, per-user figures) from ``(user, domain, level, {field: score})`` per gold answer.

    An answer's score is the mean of its field scores; ``answers`` counts gold tasks answered.
    """
    by_user: dict[int, list[float]] = defaultdict(list)
    by_user_field: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    by_user_skill: dict[int, dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(list))
    by_field: dict[str, list[float]] = defaultdict(list)
    by_skill: dict[tuple[str, str], list[float]] = defaultdict(list)
    everything: list[float] = []
    for user, domain, level, scores in gold:
        if not scores:
            continue
        score = sum(scores.values()) / len(scores)
        by_user[user].append(score)
        by_user_skill[user][(domain, level)].append(score)
        by_skill[(domain, level)].append(score)
        everything.append(score)
        for field_name, field_score in scores.items():
            by_user_field[user][field_name].append(field_score)
            by_field[field_name].append(field_score)
    level_order = {lv: i for i, lv in enumerate(SKILL_LEVELS)}

    def skill_rows(groups: dict[tuple[str, str], list[float]]) -> list[dict]:
        ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], level_order.get(kv[0][1], 9), kv[0][1]))
        return [{"domain": d, "level": lv, **accuracy(s)} for (d, lv), s in ordered]

    per_user = {
        user: {
            **accuracy(scores),
            "per_field": {f: accuracy(s) for f, s in sorted(by_user_field[user].items())},
            "per_skill": skill_rows(by_user_skill[user]),
        }
        for user, scores in by_user.items()
    }
    summary = {
        **accuracy(everything),
        "per_field": {f: accuracy(s) for f, s in sorted(by_field.items())},
        "per_skill": skill_rows(by_skill),
        "per_annotator": sorted(
            ({"user_id": u, "username": usernames.get(u, str(u)), **accuracy(s)} for u, s in by_user.items()),
            key=lambda row: (row["accuracy"] is None, row["accuracy"] or 0, row["username"]),
        ),
    }
    return summary, per_user


def progress_figures(per_day: Counter[str], completed_per_day: Counter[str]) -> list[dict]:
    """Annotations and completed tasks per day, with running totals."""
    out, total, done = [], 0, 0
    for day in sorted(set(per_day) | set(completed_per_day)):
        total += per_day.get(day, 0)
        done += completed_per_day.get(day, 0)
        out.append(
            {
                "date": day,
                "annotations": per_day.get(day, 0),
                "annotations_total": total,
                "tasks_completed": completed_per_day.get(day, 0),
                "tasks_completed_total": done,
            }
        )
    return out


def throughput_figures(user_days: dict[int, Counter[str]], usernames: dict[int, str]) -> list[dict]:
    rows = []
    for user, days in user_days.items():
        submitted = sum(days.values())
        rows.append(
            {
                "user_id": user,
                "username": usernames.get(user, str(user)),
                "submitted": submitted,
                "active_days": len(days),
                "per_active_day": _r(submitted / len(days), 2) if days else None,
                "last_day": max(days) if days else None,
            }
        )
    return sorted(rows, key=lambda r: (-r["submitted"], r["username"]))


def lead_time_figures(lead_times: dict[int, list[float]], usernames: dict[int, str]) -> dict:
    everything = [t for times in lead_times.values() for t in times]
    histogram = []
    edges = [*LEAD_TIME_BINS, None]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        count = sum(1 for t in everything if t >= lo and (hi is None or t < hi))
        histogram.append({"lo": lo, "hi": hi, "count": count})
    ordered = sorted(everything)
    return {
        "median": _r(statistics.median(ordered), 1) if ordered else None,
        "p90": _r(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1) if ordered else None,
        "histogram": histogram,
        "per_annotator": sorted(
            (
                {"user_id": u, "username": usernames.get(u, str(u)), "median": _r(statistics.median(t), 1)}
                for u, t in lead_times.items()
                if t
            ),
            key=lambda r: r["username"],
        ),
    }
