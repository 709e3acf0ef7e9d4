"""Writes on the queue: claiming the next task under a lease, skipping, releasing.

Correctness rule: a task never holds more than ``project.overlap`` slots, where a slot is a
submitted assignment or a leased one whose lease has not expired. The claim locks the task row
(``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serializes writers with IMMEDIATE
transactions), recounts its slots and only then records the lease.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.exceptions import Conflict
from projects.core.models import Project

CANDIDATE_BATCH = 20


def holding_q(now, prefix: str = "") -> Q:
    """Assignments that hold a slot at ``now``: submitted, or leased and not yet expired."""
    return Q(**{f"{prefix}status": AssignmentStatus.SUBMITTED}) | Q(
        **{f"{prefix}status": AssignmentStatus.LEASED, f"{prefix}expires_at__gt": now}
    )


def _current_lease(*, project: Project, user, now) -> Assignment | None:
    return (
        Assignment.objects.filter(project=project, user=user, status=AssignmentStatus.LEASED, expires_at__gt=now)
        .select_related("task")
        .order_by("leased_at", "id")
        .first()
    )


def _candidates(*, project: Project, user, now):
    done_by_user = (
        Assignment.objects.filter(project=project, user=user)
        .exclude(status=AssignmentStatus.LEASED, expires_at__lte=now)
        .exclude(status=AssignmentStatus.ASSIGNED)
    )
    return (
        Task.objects.filter(project=project, is_complete=False)
        .exclude(pk__in=done_by_user.values("task_id"))
        .annotate(slots=Count("assignments", filter=holding_q(now, "assignments__")))
        .filter(slots__lt=project.overlap)
        .order_by("-priority", "id")
    )


def _claim(*, task_id: int, project: Project, user, now) -> Assignment | None:
    """Lease one slot of the task to the user, or None if it is full or being claimed by another."""
    locked = Task.objects.filter(pk=task_id, is_complete=False)
    if settings.IS_POSTGRES:
        locked = locked.select_for_update(skip_locked=True)
    task = locked.first()
    if task is None:
        return None
    held = Assignment.objects.filter(holding_q(now), task=task).exclude(user=user).count()
    if held >= project.overlap:
        return None
    expires = now + timedelta(minutes=project.lease_minutes)
    assignment, _ = Assignment.objects.update_or_create(
        task=task,
        user=user,
        defaults={"project": project, "status": AssignmentStatus.LEASED, "leased_at": now, "expires_at": expires},
    )
    assignment.task = task
    return assignment


def task_next_for_user(*, project: Project, user) -> Assignment | None:
    """Return the user's current lease in the project, or lease them the best open task."""
    now = timezone.now()
    with transaction.atomic():
        current = _current_lease(project=project, user=user, now=now)
        if current is not None:
            return current
        # Tasks a manager assigned to this user come first.
        assigned = list(
            Assignment.objects.filter(project=project, user=user, status=AssignmentStatus.ASSIGNED)
            .order_by("-task__priority", "task_id")
            .values_list("task_id", flat=True)[:CANDIDATE_BATCH]
        )
        for task_id in assigned:
            claimed = _claim(task_id=task_id, project=project, user=user, now=now)
            if claimed is not None:
                return claimed
        candidate_ids = list(
            _candidates(project=project, user=user, now=now).values_list("id", flat=True)[:CANDIDATE_BATCH]
        )
        for task_id in candidate_ids:
            claimed = _claim(task_id=task_id, project=project, user=user, now=now)
            if claimed is not None:
                return claimed
    return None


@transaction.atomic
def task_skip(*, task: Task, user) -> Assignment:
    """The user passes on the task: it leaves their queue for good and frees their slot."""
    assignment = Assignment.objects.select_for_update().filter(task=task, user=user).first()
    if assignment is not None and assignment.status == AssignmentStatus.SUBMITTED:
        raise Conflict("You already submitted this task; it cannot be skipped.")
    assignment, _ = Assignment.objects.update_or_create(
        task=task,
        user=user,
        defaults={"project_id": task.project_id, "status": AssignmentStatus.SKIPPED, "expires_at": None},
    )
    Task.objects.filter(pk=task.pk).update(skipped_count=F("skipped_count") + 1)
    return assignment


def leases_expire(*, now=None) -> int:
    """Mark leases past their expiry as expired; returns how many. Run by beat and lazily."""
    now = now or timezone.now()
    return Assignment.objects.filter(status=AssignmentStatus.LEASED, expires_at__lte=now).update(
        status=AssignmentStatus.EXPIRED, updated_at=now
    )
