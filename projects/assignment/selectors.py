"""Reads for the queue: which tasks a user may be handed next, in queue order.

Every query starts from the task row: the open-slot test uses the denormalized counters
(``submitted_count + leased_count < overlap``) and the partial queue indexes, so no candidate
needs a COUNT over its assignments.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from projects.assignment import strategies
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.models import AssignmentPolicy, Project, QueueOrder

# Statuses that take a task out of the user's own queue (an expired lease puts it back).
DONE_FOR_USER = (
    AssignmentStatus.LEASED,
    AssignmentStatus.SUBMITTED,
    AssignmentStatus.SKIPPED,
    AssignmentStatus.ESCALATED,
)


def queue_order(project: Project) -> list:
    if project.queue_order == QueueOrder.UNCERTAINTY:
        # Active learning: the least certain pre-labels first, tasks without predictions last.
        return ["-priority", F("uncertainty").asc(nulls_last=True), "id"]
    return ["-priority", "id"]


def _not_done_by(user) -> Exists:
    return Exists(Assignment.objects.filter(task=OuterRef("pk"), user=user, status__in=DONE_FOR_USER))


def routing_q(*, project: Project, skills: dict, now: datetime) -> Q:
    """The skill filter for unflagged tasks under the project's policy."""
    if project.assignment_policy != AssignmentPolicy.SKILL:
        return Q()
    routing = strategies.skill_routing(
        skills=skills, fallback=project.skill_fallback, fallback_minutes=project.skill_fallback_minutes, now=now
    )
    q = Q(required_skill="") | Q(required_skill__in=routing.expert_domains)
    if routing.generalist_domains:
        fallback = Q(required_skill__in=routing.generalist_domains)
        if routing.fallback_cutoff is not None:
            fallback &= Q(created_at__lte=routing.fallback_cutoff)
        q |= fallback
    return q


def expert_domains(skills: dict) -> list[str]:
    return sorted(d for d, level in skills.items() if level == strategies.EXPERT)


def _base(*, project: Project, user) -> QuerySet[Task]:
    return Task.objects.filter(project=project).exclude(_not_done_by(user))


def open_candidates(*, project: Project, user) -> QuerySet[Task]:
    """Incomplete tasks with a free slot that the user has not done, skipped, escalated or leased."""
    return (
        _base(project=project, user=user)
        .filter(is_complete=False, submitted_count__lt=project.overlap - F("leased_count"))
        .order_by(*queue_order(project))
    )


def assigned_candidates(*, project: Project, user, task_ids: list[int]) -> QuerySet[Task]:
    """Tasks a manager assigned to this user that still have a free slot."""
    return open_candidates(project=project, user=user).filter(pk__in=task_ids)


def gold_candidates(*, project: Project, user, skills: dict, now: datetime) -> QuerySet[Task]:
    """Gold tasks the user has not seen. Gold tasks measure every annotator, so overlap does not cap them."""
    return (
        _base(project=project, user=user)
        .filter(is_gold=True, is_flagged=False)
        .filter(routing_q(project=project, skills=skills, now=now))
        .order_by("-priority", "id")
    )


def flagged_candidates(*, project: Project, user, skills: dict) -> QuerySet[Task]:
    """Escalated tasks for experts of the flagged domain."""
    return open_candidates(project=project, user=user).filter(is_flagged=True, flag_domain__in=expert_domains(skills))


def expert_candidates(*, project: Project, user, skills: dict) -> QuerySet[Task]:
    """Skill-routed projects: tasks needing one of the user's expert domains come to them first."""
    return open_candidates(project=project, user=user).filter(
        is_flagged=False, is_gold=False, required_skill__in=expert_domains(skills)
    )


def general_candidates(*, project: Project, user, skills: dict, now: datetime) -> QuerySet[Task]:
    return (
        open_candidates(project=project, user=user)
        .filter(is_flagged=False, is_gold=False)
        .filter(routing_q(project=project, skills=skills, now=now))
    )
