"""Writes on the queue: leasing the next task, skipping, escalating, expiring leases.

Correctness rule: a task never holds more than ``project.overlap`` slots, where a slot is a
submitted assignment or a live lease. Every write that moves an assignment into or out of
"leased" locks the task row first and keeps ``Task.leased_count`` in step, so the queue can find
tasks with a free slot from the task row alone. Locks are always taken task row first, then its
assignments, so writers cannot deadlock.

PostgreSQL: the candidate is picked and locked in one ``SELECT ... FOR UPDATE SKIP LOCKED``, so
concurrent annotators walk past each other's rows instead of queueing on them; the whole claim is
one statement (``claims.py``). SQLite: writers are serialized (IMMEDIATE transactions) and the
claim is a conditional ``UPDATE`` that only succeeds while the slot is still free.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from projects.assignment import claims, selectors, strategies
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.exceptions import Conflict, ValidationFailed
from projects.core.models import Membership, Project, Role
from projects.core.services import audit_log

CANDIDATE_BATCH = 20
EXPIRE_BATCH = 500
# A claim that found nothing looks again this many times while a free task sits behind a row lock,
# pausing LOCKED_PAUSE seconds longer each time (0.01 + 0.02 + 0.03 at most).
LOCKED_RETRIES = 3
LOCKED_PAUSE = 0.01


def _set_status(*, task: Task, user, status: str, **extra) -> tuple[Assignment, str | None]:
    """Upsert the (task, user) assignment with ``status``; the caller holds the task row lock.

    Returns the assignment and its previous status, and moves ``leased_count`` when the
    assignment enters or leaves "leased".
    """
    assignment = Assignment.objects.select_for_update().filter(task=task, user=user).first()
    previous = assignment.status if assignment else None
    if assignment is None:
        assignment = Assignment.objects.create(task=task, user=user, project_id=task.project_id, status=status, **extra)
    else:
        assignment.status = status
        for key, value in extra.items():
            setattr(assignment, key, value)
        assignment.save(update_fields=["status", "updated_at", *extra])
    delta = int(status == AssignmentStatus.LEASED) - int(previous == AssignmentStatus.LEASED)
    if delta:
        Task.objects.filter(pk=task.pk).update(leased_count=F("leased_count") + delta)
    return assignment, previous


def _lease(*, task: Task, project: Project, user, now) -> Assignment:
    """Record the lease; the caller holds the task (row lock or conditional claim).

    Candidates exclude tasks this user holds a lease on, so the assignment enters "leased" from
    nothing, "assigned" or "expired": one upsert and ``leased_count + 1``.
    """
    (assignment,) = Assignment.objects.bulk_create(
        [
            Assignment(
                project=project,
                task=task,
                user=user,
                status=AssignmentStatus.LEASED,
                leased_at=now,
                expires_at=now + timedelta(minutes=project.lease_minutes),
            )
        ],
        update_conflicts=True,
        unique_fields=["task", "user"],
        update_fields=["status", "leased_at", "expires_at", "updated_at"],
    )
    Task.objects.filter(pk=task.pk).update(leased_count=F("leased_count") + 1)
    assignment.task = task
    return assignment


def _claim_first(
    candidates: selectors.Candidates, *, project: Project, user, now, capped: bool = True
) -> Assignment | None:
    """Lease the first candidate that can still be claimed."""
    if settings.IS_POSTGRES:
        return claims.claim(candidates, project=project, user=user, now=now)
    for task_id in selectors.candidate_ids(candidates, CANDIDATE_BATCH):
        claim = Task.objects.filter(pk=task_id)
        if capped:
            claim = claim.filter(is_complete=False, submitted_count__lt=project.overlap - F("leased_count"))
        # The conditional update is the claim: 0 rows means the slot went meanwhile.
        if claim.update(leased_count=F("leased_count")) == 1:
            task = Task.objects.select_related("article").get(pk=task_id)
            return _lease(task=task, project=project, user=user, now=now)
    return None


def _held_lease(*, project: Project, user, now) -> Assignment | None:
    """The user's live lease in the project (the oldest, should there be several), or None."""
    if settings.IS_POSTGRES:
        return claims.held_lease(project=project, user=user, now=now)
    return (
        Assignment.objects.filter(project=project, user=user, status=AssignmentStatus.LEASED, expires_at__gt=now)
        .select_related("task", "task__article")
        .order_by("leased_at", "id")
        .first()
    )


# A superuser who is not a member acts as an admin with no skills; check everything.
_SUPERUSER_STATE = {"membership_id": None, "role": Role.ADMIN, "paused": False, "skills": {}, "stale": True,
                    "holds": True, "served": None}  # fmt: skip


def _serve(*, state: selectors.QueueState, project: Project, user, now) -> Assignment | None:
    """The queue itself, after the user's state was read under the lock; see ``task_next_for_user``."""
    if state.paused:
        return None
    if state.stale:
        leases_expire(project=project, now=now)  # the lazy check; beat does the rest
    skills = state.skills
    tried = []  # the capped passes that found nothing
    if state.holds:
        held = _held_lease(project=project, user=user, now=now)
        if held is not None:
            return held
        assigned_ids = selectors.assigned_task_ids(project_id=project.pk, user_id=user.pk, limit=CANDIDATE_BATCH * 5)
        if assigned_ids:
            assigned = selectors.assigned_candidates(project=project, user_id=user.pk, task_ids=assigned_ids)
            claimed = _claim_first(assigned, project=project, user=user, now=now)
            if claimed is not None:
                return claimed
            tried.append(assigned)
    if project.gold_ratio > 0:
        served = state.served
        if served is None:
            served = Assignment.objects.filter(project=project, user=user).exclude(status=AssignmentStatus.ASSIGNED)
            served = served.count()
        if strategies.gold_turn(ratio=project.gold_ratio, project_id=project.pk, user_id=user.pk, served=served):
            gold = selectors.gold_candidates(project=project, user_id=user.pk, skills=skills, now=now)
            claimed = _claim_first(gold, project=project, user=user, now=now, capped=False)
            if claimed is not None:
                return claimed
    for candidates in selectors.queue_passes(project=project, user_id=user.pk, skills=skills, now=now):
        claimed = _claim_first(candidates, project=project, user=user, now=now)
        if claimed is not None:
            return claimed
        tried.append(candidates)
    if settings.IS_POSTGRES:
        return _claim_behind_locks(tried, project=project, user=user, now=now)
    return None


def _claim_behind_locks(passes: list[selectors.Candidates], *, project: Project, user, now) -> Assignment | None:
    """PostgreSQL, when every pass came up empty: a free task may sit behind a row lock.

    ``SKIP LOCKED`` walks past task rows that another transaction holds for a moment (a submit
    counting its annotation, another annotator's claim). Usually other rows are free; near the
    end of a project the locked row can be the last one with a free slot, and the user would be
    told the queue is empty while a slot is still open. So look for a free candidate without
    locking; while there is one, pause briefly (the lock holder commits in milliseconds) and claim
    again. Waiting on the lock instead (``FOR UPDATE`` without ``SKIP LOCKED``) would queue this
    transaction behind others that may hold task rows it locked itself (the lazy expiry).
    """
    for attempt in range(1, LOCKED_RETRIES + 1):
        behind = [candidates for candidates in passes if selectors.candidate_ids(candidates, 1)]
        if not behind:
            return None
        time.sleep(LOCKED_PAUSE * attempt)
        for candidates in behind:
            claimed = claims.claim(candidates, project=project, user=user, now=now)
            if claimed is not None:
                return claimed
    return None


@dataclass(frozen=True)
class QueueOutlook:
    """What an empty queue may still hand the user, asked after it had nothing for them.

    ``held_by_others``: tasks (up to 1,000) they would be handed once other annotators' live
    leases on them end (submitted, skipped or expired). ``opens_later``: in skill-routed projects
    with a fallback wait, tasks needing a domain they are a generalist in, still reserved for
    experts; the first opens to them at ``opens_at`` unless an expert takes it. Both 0: done.
    """

    held_by_others: int = 0
    opens_later: int = 0
    opens_at: datetime | None = None

    @property
    def done(self) -> bool:
        return not self.held_by_others and not self.opens_later


def _count(passes: list[selectors.Candidates], limit: int) -> int:
    found: set[int] = set()
    for candidates in passes:
        found.update(selectors.candidate_ids(candidates, limit - len(found)))
        if len(found) >= limit:
            break
    return len(found)


def queue_outlook(*, project: Project, user, limit: int = 1000) -> QueueOutlook:
    """See ``QueueOutlook``. ``project`` needs its queue settings."""
    now = timezone.now()
    state = selectors.queue_state(project_id=project.pk, user_id=user.pk, now=now)
    if state is None:
        if not user.is_superuser:
            return QueueOutlook()
        state = selectors.QueueState(**_SUPERUSER_STATE)
    if state.paused:
        return QueueOutlook()
    skills = state.skills
    passes = selectors.queue_passes(project=project, user_id=user.pk, skills=skills, now=now, leased_free=True)
    assigned_ids = (
        selectors.assigned_task_ids(project_id=project.pk, user_id=user.pk, limit=CANDIDATE_BATCH * 5)
        if state.holds
        else []
    )
    if assigned_ids:
        passes.insert(
            0,
            selectors.assigned_candidates(project=project, user_id=user.pk, task_ids=assigned_ids, leased_free=True),
        )
    held = _count(passes, limit)
    later = selectors.opening_later(project=project, user_id=user.pk, skills=skills, now=now)
    if later is None or not (first := selectors.candidate_ids(later, 1)):
        return QueueOutlook(held_by_others=held)
    created = Task.objects.filter(pk=first[0]).values_list("created_at", flat=True).get()
    return QueueOutlook(
        held_by_others=held,
        opens_later=_count([later], limit),
        opens_at=created + timedelta(minutes=project.skill_fallback_minutes),
    )


def task_next_for_user(*, project: Project, user) -> Assignment | None:
    """Return the user's live lease in the project, or lease them the best eligible task.

    Order: tasks a manager assigned to them; a gold task when one is due (``gold_ratio``);
    escalated tasks for experts of the flagged domain; in skill-routed projects the tasks needing
    one of their expert skills; then every other task their routing allows. Within each, higher
    priority first, then (``queue_order=uncertainty``) the least certain pre-label, then id.
    Members whose queue is paused get nothing; non-members (except superusers) neither.
    """
    now = timezone.now()
    with transaction.atomic():
        state = selectors.queue_state_locked(project_id=project.pk, user_id=user.pk, now=now)
        if state is None:
            if not user.is_superuser:
                return None
            state = selectors.QueueState(**_SUPERUSER_STATE)
        return _serve(state=state, project=project, user=user, now=now)


def task_next_in_project(*, project_id: int, user, role: str) -> tuple[Membership | None, Assignment | None]:
    """``task_next_for_user`` for the API, which knows only the project id: the membership, the
    project's queue settings and the user's queue state come from one locked read.

    Returns (None, None) when the user may not see the project (not a member, not a superuser,
    or no such project), (membership, None) when their role is below ``role`` or nothing is left
    for them, else their membership and the lease. The returned project (``membership.project``)
    has only its queue settings loaded.
    """
    now = timezone.now()
    with transaction.atomic():
        state = selectors.queue_state_locked(project_id=project_id, user_id=user.pk, now=now)
        if state is not None:
            project = state.project
            membership = Membership(
                pk=state.membership_id, project=project, user=user, role=state.role, queue_paused=state.paused
            )
        else:
            project = Project.objects.filter(pk=project_id).first() if user.is_superuser else None
            if project is None:
                return None, None
            membership = Membership(project=project, user=user, role=Role.ADMIN)
            state = selectors.QueueState(**_SUPERUSER_STATE)
        if not membership.has_role(role):
            return membership, None
        return membership, _serve(state=state, project=project, user=user, now=now)


@transaction.atomic
def task_skip(*, task: Task, user) -> Assignment:
    """The user passes on the task: it leaves their queue for good and frees their slot."""
    task = Task.objects.select_for_update().get(pk=task.pk)
    current = Assignment.objects.filter(task=task, user=user).values_list("status", flat=True).first()
    if current == AssignmentStatus.SUBMITTED:
        raise Conflict("You already submitted this task; it cannot be skipped.")
    assignment, _ = _set_status(task=task, user=user, status=AssignmentStatus.SKIPPED, expires_at=None)
    Task.objects.filter(pk=task.pk).update(skipped_count=F("skipped_count") + 1)
    return assignment


@transaction.atomic
def task_escalate(*, task: Task, user, domain: str, reason: str = "", unsafe: bool = False) -> Task:
    """Flag the task as needing an expert of ``domain`` (or as unsafe).

    It leaves the user's queue (their assignment becomes "escalated" unless they already
    submitted), and from then on only experts of ``domain`` are handed it. The flag stays on the
    task for reviewers and managers.
    """
    domain = (domain or "").strip()
    if not domain and unsafe:
        domain = "safety"
    if not domain or len(domain) > 64:
        raise ValidationFailed("Name the domain this task needs.", fields={"domain": "1 to 64 characters"})
    task = Task.objects.select_for_update().get(pk=task.pk)
    current = Assignment.objects.filter(task=task, user=user).values_list("status", flat=True).first()
    if current != AssignmentStatus.SUBMITTED:
        _set_status(task=task, user=user, status=AssignmentStatus.ESCALATED, expires_at=None)
    task.is_flagged = True
    task.flag_domain = domain
    task.flag_reason = reason[:2000]
    task.flag_unsafe = bool(unsafe)
    task.flagged_at = timezone.now()
    task.save(update_fields=["is_flagged", "flag_domain", "flag_reason", "flag_unsafe", "flagged_at", "updated_at"])
    audit_log(
        actor=user,
        action="task.escalate",
        project=task.project,
        target=task,
        data={"domain": domain, "reason": task.flag_reason, "unsafe": task.flag_unsafe},
    )
    return task


def leased_count_subquery() -> Coalesce:
    leased = (
        Assignment.objects.filter(task=OuterRef("pk"), status=AssignmentStatus.LEASED)
        .order_by()
        .values("task")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(leased, output_field=IntegerField()), Value(0))


def leases_expire(*, project: Project | None = None, now=None, batch: int = EXPIRE_BATCH) -> int:
    """Return leases past their expiry to the queue; returns how many. Run by beat and lazily.

    Locks the affected task rows (skipping ones busy right now; the next run takes them), flips
    their stale leases to "expired" and recounts ``leased_count`` from the assignments, which
    also repairs any drift.
    """
    now = now or timezone.now()
    expired = 0
    while True:
        stale = Assignment.objects.filter(status=AssignmentStatus.LEASED, expires_at__lte=now)
        if project is not None:
            stale = stale.filter(project=project)
        task_ids = sorted(set(stale.values_list("task_id", flat=True)[:batch]))
        if not task_ids:
            return expired
        with transaction.atomic():
            locked = Task.objects.filter(pk__in=task_ids).order_by("pk")
            if settings.IS_POSTGRES:
                locked = locked.select_for_update(skip_locked=True)
            locked_ids = list(locked.values_list("pk", flat=True))
            if not locked_ids:
                return expired
            n = Assignment.objects.filter(
                task_id__in=locked_ids, status=AssignmentStatus.LEASED, expires_at__lte=now
            ).update(status=AssignmentStatus.EXPIRED, updated_at=now)
            Task.objects.filter(pk__in=locked_ids).update(leased_count=leased_count_subquery())
        expired += n
        if len(task_ids) < batch or n == 0:
            return expired
