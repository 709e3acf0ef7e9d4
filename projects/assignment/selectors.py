"""Reads for the queue: which tasks a user may be handed next, in queue order, and the user's
queue state.

Every next-task call runs these, so they are written as SQL rather than built with the ORM
(building and compiling the querysets cost more CPU than the database spent answering them).
The same SQL serves PostgreSQL and SQLite. Every candidate query starts from the task row: the
open-slot test uses the denormalized counters (``submitted_count + leased_count < overlap``) and
the partial queue indexes (``WHERE NOT is_complete``), so no candidate needs a COUNT over its
assignments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection

from annotator.db import hot_cursor, json_value
from projects.assignment import strategies
from projects.assignment.models import AssignmentStatus
from projects.core.models import AssignmentPolicy, Project, QueueOrder

# Statuses that take a task out of the user's own queue (an expired lease puts it back).
DONE_FOR_USER = (
    AssignmentStatus.LEASED,
    AssignmentStatus.SUBMITTED,
    AssignmentStatus.SKIPPED,
    AssignmentStatus.ESCALATED,
)
_DONE_SQL = "(" + ", ".join(f"'{status.value}'" for status in DONE_FOR_USER) + ")"


@dataclass(frozen=True)
class Candidates:
    """Tasks of one queue pass: ``SELECT t.id FROM assignment_task t WHERE <where> ORDER BY <order>``."""

    where: str
    params: tuple
    order: str

    def select(self, suffix: str = "") -> str:
        return f"SELECT t.id FROM assignment_task t WHERE {self.where} ORDER BY {self.order} {suffix}"


def _in(column: str, values) -> tuple[str, list]:
    """``column`` is one of ``values`` (not empty). PostgreSQL takes the list as one array
    parameter, so the statement's text does not depend on its length (it is prepared once)."""
    if settings.IS_POSTGRES:
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def queue_order(project: Project) -> str:
    if project.queue_order == QueueOrder.UNCERTAINTY:
        # Active learning: the least certain pre-labels first, tasks without predictions last.
        return "t.priority DESC, t.uncertainty ASC NULLS LAST, t.id ASC"
    return "t.priority DESC, t.id ASC"


def expert_domains(skills: dict) -> list[str]:
    return sorted(d for d, level in skills.items() if level == strategies.EXPERT)


def _base(*, project: Project, user_id: int) -> tuple[list[str], list]:
    """Tasks of the project that the user has not done, skipped, escalated or leased."""
    return [
        "t.project_id = %s",
        "NOT EXISTS (SELECT 1 FROM assignment_assignment d WHERE d.task_id = t.id AND d.user_id = %s"
        f" AND d.status IN {_DONE_SQL})",
    ], [project.pk, user_id]


def _open(*, project: Project, user_id: int, leased_free: bool = False) -> tuple[list[str], list]:
    """Incomplete tasks with a free slot that the user has not done, skipped, escalated or leased.

    ``leased_free``: count the slots other annotators hold with a live lease as free too (the
    tasks the user could be handed once those leases end).

    ``NOT t.is_complete`` is spelled as the partial indexes' condition, so the planner uses them.
    """
    where, params = _base(project=project, user_id=user_id)
    slot = "t.submitted_count < %s" if leased_free else "t.submitted_count < %s - t.leased_count"
    return [*where, "NOT t.is_complete", slot], [*params, project.overlap]


def _skill_routing(*, project: Project, skills: dict, now: datetime) -> strategies.SkillRouting:
    return strategies.skill_routing(
        skills=skills, fallback=project.skill_fallback, fallback_minutes=project.skill_fallback_minutes, now=now
    )


def _routing(*, project: Project, skills: dict, now: datetime) -> tuple[list[str], list]:
    """The skill filter for unflagged tasks under the project's policy."""
    if project.assignment_policy != AssignmentPolicy.SKILL:
        return [], []
    routing = _skill_routing(project=project, skills=skills, now=now)
    terms, params = ["t.required_skill = ''"], []
    if routing.expert_domains:
        term, values = _in("t.required_skill", routing.expert_domains)
        terms.append(term)
        params.extend(values)
    if routing.generalist_domains:
        fallback, values = _in("t.required_skill", routing.generalist_domains)
        params.extend(values)
        if routing.fallback_cutoff is not None:
            fallback = f"({fallback} AND t.created_at <= %s)"
            params.append(connection.ops.adapt_datetimefield_value(routing.fallback_cutoff))
        terms.append(fallback)
    return ["(" + " OR ".join(terms) + ")"], params


def _candidates(parts: tuple[list[str], list], *more: tuple[list[str], list], order: str) -> Candidates:
    where, params = list(parts[0]), list(parts[1])
    for w, p in more:
        where.extend(w)
        params.extend(p)
    return Candidates(" AND ".join(where), tuple(params), order)


def assigned_candidates(
    *, project: Project, user_id: int, task_ids: list[int], leased_free: bool = False
) -> Candidates:
    """Tasks a manager assigned to this user that still have a free slot."""
    term, values = _in("t.id", task_ids)
    return _candidates(
        _open(project=project, user_id=user_id, leased_free=leased_free), ([term], values), order=queue_order(project)
    )


def gold_candidates(*, project: Project, user_id: int, skills: dict, now: datetime) -> Candidates:
    """Gold tasks the user has not seen. Gold tasks measure every annotator, so overlap does not cap them."""
    return _candidates(
        _base(project=project, user_id=user_id),
        (["t.is_gold", "NOT t.is_flagged"], []),
        _routing(project=project, skills=skills, now=now),
        order="t.priority DESC, t.id ASC",
    )


def flagged_candidates(*, project: Project, user_id: int, skills: dict, leased_free: bool = False) -> Candidates:
    """Escalated tasks for experts of the flagged domain (the caller checks the user is an expert of some)."""
    term, values = _in("t.flag_domain", expert_domains(skills))
    return _candidates(
        _open(project=project, user_id=user_id, leased_free=leased_free),
        (["t.is_flagged", term], values),
        order=queue_order(project),
    )


def expert_candidates(*, project: Project, user_id: int, skills: dict, leased_free: bool = False) -> Candidates:
    """Skill-routed projects: tasks needing one of the user's expert domains come to them first."""
    term, values = _in("t.required_skill", expert_domains(skills))
    return _candidates(
        _open(project=project, user_id=user_id, leased_free=leased_free),
        (["NOT t.is_flagged", "NOT t.is_gold", term], values),
        order=queue_order(project),
    )


def general_candidates(
    *, project: Project, user_id: int, skills: dict, now: datetime, leased_free: bool = False
) -> Candidates:
    return _candidates(
        _open(project=project, user_id=user_id, leased_free=leased_free),
        (["NOT t.is_flagged", "NOT t.is_gold"], []),
        _routing(project=project, skills=skills, now=now),
        order=queue_order(project),
    )


def queue_passes(
    *, project: Project, user_id: int, skills: dict, now: datetime, leased_free: bool = False
) -> list[Candidates]:
    """The queue's passes after the assigned and gold tasks, in order: escalated tasks for experts
    of the flagged domain; in skill-routed projects the tasks needing one of the user's expert
    skills; then every other task the project's routing allows (none in manual projects)."""
    passes = []
    if expert_domains(skills):
        passes.append(flagged_candidates(project=project, user_id=user_id, skills=skills, leased_free=leased_free))
        if project.assignment_policy == AssignmentPolicy.SKILL:
            passes.append(expert_candidates(project=project, user_id=user_id, skills=skills, leased_free=leased_free))
    if project.assignment_policy != AssignmentPolicy.MANUAL:
        passes.append(
            general_candidates(project=project, user_id=user_id, skills=skills, now=now, leased_free=leased_free)
        )
    return passes


def opening_later(*, project: Project, user_id: int, skills: dict, now: datetime) -> Candidates | None:
    """Skill-routed projects with a fallback wait: tasks needing a domain the user is a generalist
    in that are still inside the wait (experts have them first), with a slot not yet submitted.
    Oldest first: the first one opens to the user first. None when nothing can open later."""
    if project.assignment_policy != AssignmentPolicy.SKILL:
        return None
    routing = _skill_routing(project=project, skills=skills, now=now)
    if routing.fallback_cutoff is None or not routing.generalist_domains:
        return None
    term, values = _in("t.required_skill", routing.generalist_domains)
    cutoff = connection.ops.adapt_datetimefield_value(routing.fallback_cutoff)
    return _candidates(
        _open(project=project, user_id=user_id, leased_free=True),
        (["NOT t.is_flagged", "NOT t.is_gold", term, "t.created_at > %s"], [*values, cutoff]),
        order="t.created_at ASC, t.id ASC",
    )


def candidate_ids(candidates: Candidates, limit: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(candidates.select(f"LIMIT {int(limit)}"), candidates.params)
        return [row[0] for row in cursor.fetchall()]


# --- the user's queue state -----------------------------------------------------------------

# The project's queue settings, in the order the state query reads them (the model's field order,
# which ``Model.from_db`` expects).
PROJECT_QUEUE_FIELDS = (
    "id",
    "overlap",
    "assignment_policy",
    "skill_fallback",
    "skill_fallback_minutes",
    "gold_ratio",
    "lease_minutes",
    "queue_order",
)

# "Holds anything" is two equality probes of (project, user, status), not ``status IN (...)``:
# with the list, PostgreSQL may match only (project, user) in the index and filter the status,
# reading every assignment the user ever had in the project on every next-task.
_STATE_SQL = f"""
SELECT m.id, m.role, m.queue_paused, pr.skills,
       {", ".join(f"p.{name}" for name in PROJECT_QUEUE_FIELDS)},
       EXISTS (SELECT 1 FROM assignment_assignment s
               WHERE s.project_id = m.project_id AND s.status = 'leased' AND s.expires_at <= %s),
       EXISTS (SELECT 1 FROM assignment_assignment h
               WHERE h.project_id = m.project_id AND h.user_id = m.user_id AND h.status = 'leased')
       OR EXISTS (SELECT 1 FROM assignment_assignment h
                  WHERE h.project_id = m.project_id AND h.user_id = m.user_id AND h.status = 'assigned'),
       CASE WHEN p.gold_ratio > 0 THEN
           (SELECT count(*) FROM assignment_assignment g
            WHERE g.project_id = m.project_id AND g.user_id = m.user_id AND g.status <> 'assigned')
       END
FROM projects_membership m
JOIN projects_project p ON p.id = m.project_id
LEFT JOIN projects_annotatorprofile pr ON pr.user_id = m.user_id
WHERE m.project_id = %s AND m.user_id = %s
"""
_STATE_SQL_LOCKING = _STATE_SQL + "FOR UPDATE OF m"


@dataclass
class QueueState:
    """What one next-task call needs to know before it picks a task."""

    membership_id: int | None
    role: str | None
    paused: bool
    skills: dict
    stale: bool  # the project has leases past expiry (the lazy expiry check)
    holds: bool  # the user holds a lease or was assigned tasks
    served: int | None  # tasks served to the user so far (read only when the project mixes in gold)
    project: Project | None = None


def queue_state_locked(*, project_id: int, user_id: int, now: datetime) -> QueueState | None:
    """Lock the user's membership row and read, in the same statement, what the queue needs.

    Locking the membership row (PostgreSQL; SQLite serializes writers anyway) makes one claim
    per user at a time, so a double click cannot lease two tasks. The row brings the role, the
    pause flag, the user's skills, the project's queue settings (as a ``Project`` with only those
    fields loaded), whether the project has leases past expiry, whether the user holds or was
    assigned anything and, in projects with gold, how many tasks they were served. Call inside a
    transaction. None when the user is not a member.
    """
    return queue_state(project_id=project_id, user_id=user_id, now=now, lock=settings.IS_POSTGRES)


def queue_state(*, project_id: int, user_id: int, now: datetime, lock: bool = False) -> QueueState | None:
    """``queue_state_locked``'s row, read without the lock unless ``lock``."""
    with hot_cursor() as cursor:
        sql = _STATE_SQL_LOCKING if lock else _STATE_SQL
        cursor.execute(sql, [connection.ops.adapt_datetimefield_value(now), project_id, user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    membership_id, role, paused, skills = row[:4]
    n = len(PROJECT_QUEUE_FIELDS)
    stale, holds, served = row[4 + n :]
    return QueueState(
        membership_id=membership_id,
        role=role,
        paused=bool(paused),
        skills=json_value(skills) or {},
        stale=bool(stale),
        holds=bool(holds),
        served=served,
        project=Project.from_db(connection.alias, PROJECT_QUEUE_FIELDS, row[4 : 4 + n]),
    )


def assigned_task_ids(*, project_id: int, user_id: int, limit: int) -> list[int]:
    """Tasks a manager assigned to the user (status ``assigned``), oldest assignment first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT task_id FROM assignment_assignment WHERE project_id = %s AND user_id = %s AND status = 'assigned'"
            f" ORDER BY id LIMIT {int(limit)}",
            [project_id, user_id],
        )
        return [row[0] for row in cursor.fetchall()]


# The distinct values of an indexed column by skipping through the index (a "loose index scan"):
# one probe of (project, required_skill, id) per value, instead of reading the index entry of
# every task (about 12 ms per 100,000 tasks). Both databases run recursive CTEs.
_SKILLS_SQL = """
WITH RECURSIVE s(skill, n) AS (
    SELECT (SELECT min(required_skill) FROM assignment_task WHERE project_id = %s AND required_skill > ''), 1
    UNION ALL
    SELECT (SELECT min(required_skill) FROM assignment_task WHERE project_id = %s AND required_skill > s.skill), n + 1
    FROM s WHERE s.skill IS NOT NULL AND n < %s
)
SELECT skill FROM s WHERE skill IS NOT NULL ORDER BY n
"""


def required_skills(*, project_id: int, limit: int = 200) -> list[str]:
    """The skills the project's tasks require, sorted, at most ``limit`` of them."""
    with connection.cursor() as cursor:
        cursor.execute(_SKILLS_SQL, [project_id, project_id, limit])
        return [row[0] for row in cursor.fetchall()]
