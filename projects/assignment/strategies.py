"""Pure queue rules: who may receive a task, when a gold task is due, and small statistics.

No ORM here (doccano's ``assignment/strategies.py``): inputs are plain values, so the rules are
tested without a database and reused by the query builders in ``selectors.py``.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

EXPERT = "expert"
GENERALIST = "generalist"


@dataclass(frozen=True)
class SkillRouting:
    """What one user may receive in a skill-routed project.

    ``expert_domains`` always; ``generalist_domains`` only if the project's fallback allows it,
    and (``after_wait``) only for tasks created before ``fallback_cutoff``.
    """

    expert_domains: tuple[str, ...]
    generalist_domains: tuple[str, ...]
    fallback_cutoff: datetime | None  # None: no wait


def skill_routing(*, skills: Mapping[str, str], fallback: str, fallback_minutes: int, now: datetime) -> SkillRouting:
    """Route by the user's skill levels and the project's fallback (never, after_wait, immediate)."""
    experts = tuple(sorted(d for d, level in skills.items() if level == EXPERT))
    generalists = tuple(sorted(d for d, level in skills.items() if level == GENERALIST))
    if fallback == "never":
        return SkillRouting(experts, (), None)
    if fallback == "after_wait":
        return SkillRouting(experts, generalists, now - timedelta(minutes=fallback_minutes))
    return SkillRouting(experts, generalists, None)


def may_receive(routing: SkillRouting, *, required_skill: str, created_at: datetime) -> bool:
    """The same rule as the query, for one task (used in tests and explanations)."""
    if not required_skill or required_skill in routing.expert_domains:
        return True
    if required_skill in routing.generalist_domains:
        return routing.fallback_cutoff is None or created_at <= routing.fallback_cutoff
    return False


def gold_turn(*, ratio: float, project_id: int, user_id: int, served: int) -> bool:
    """Whether this user's next task should be a gold one.

    Seeded by (project, user, tasks served so far): deterministic, so tests and replays agree,
    yet without a visible period an annotator could learn (every 10th task is not gold).
    """
    if ratio <= 0:
        return False
    if ratio >= 1:
        return True
    return random.Random(f"gold:{project_id}:{user_id}:{served}").random() < ratio


def task_status(*, is_complete: bool, submitted_count: int, leased_count: int) -> str:
    """open (nobody on it), in_progress (leased or partly submitted), completed."""
    if is_complete:
        return "completed"
    if submitted_count or leased_count:
        return "in_progress"
    return "open"


def median_or_none(values: Iterable[float]) -> float | None:
    values = list(values)
    return float(statistics.median(values)) if values else None


def parse_ordering(raw: str, allowed: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Split ``"-priority,id"`` into ORM order-by terms; return (terms, rejected keys).

    Only keys of ``allowed`` (public name -> model field) pass; anything else, including
    ``article__text`` style lookups into other tables, is rejected rather than ignored.
    """
    terms: list[str] = []
    rejected: list[str] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        desc = part.startswith("-")
        key = part[1:] if desc else part
        if key not in allowed:
            rejected.append(part)
            continue
        terms.append(("-" if desc else "") + allowed[key])
    return terms, rejected
