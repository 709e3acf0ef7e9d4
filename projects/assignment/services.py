"""Writes on the queue: leasing the next task, skipping, escalating, expiring leases.

Correctness rule: a task never holds more than ``project.overlap`` slots, where a slot is a
submitted assignment or a live lease. Every write that moves an assignment into or out of
"leased" locks the task row first and keeps ``Task.leased_count`` in step, so the queue can find
tasks with a free slot from the task row alone. Locks are always taken task row first, then its
assignments, so writers cannot deadlock.

PostgreSQL: the candidate is picked and locked in one ``SELECT ... FOR UPDATE SKIP LOCKED``, so
concurrent annotators walk past each other's rows instead of queueing on them. SQLite: writers are
serialized (IMMEDIATE transactions) and the claim is a conditional ``UPDATE`` that only succeeds
while the slot is still free.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from projects.assignment import selectors, strategies
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.exceptions import Conflict, ValidationFailed
from projects.core.models import AssignmentPolicy, Membership, Project
from projects.core.services import audit_log
from projects.documents.models import Article

CANDIDATE_BATCH = 20
EXPIRE_BATCH = 500


def holding_q(now, prefix: str = "") -> Q:
    """Assignments that hold a slot at ``now``: submitted, or leased and not yet expired."""
    return Q(**{f"{prefix}status": AssignmentStatus.SUBMITTED}) | Q(
        **{f"{prefix}status": AssignmentStatus.LEASED, f"{prefix}expires_at__gt": now}
    )


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


def _claim_first(candidates: QuerySet[Task], *, project: Project, user, now, capped: bool = True) -> Assignment | None:
    """Lease the first candidate that can still be claimed."""
    if settings.IS_POSTGRES:
        return _claim_pg(candidates, project=project, user=user, now=now)
    for task in candidates.select_related("article")[:CANDIDATE_BATCH]:
        claim = Task.objects.filter(pk=task.pk)
        if capped:
            claim = claim.filter(is_complete=False, submitted_count__lt=project.overlap - F("leased_count"))
        # The conditional update is the claim: 0 rows means the slot went meanwhile.
        if claim.update(leased_count=F("leased_count")) == 1:
            return _lease(task=task, project=project, user=user, now=now)
    return None


# PostgreSQL: pick, lock, count and lease in one statement. The candidate subquery ends in
# ``LIMIT 1 FOR UPDATE OF assignment_task SKIP LOCKED``; the UPDATE takes the locked row, the
# INSERT records (or renews) the user's assignment, and the final SELECT also reads what the
# annotator's page needs (the article, their own earlier draft, the predictions), so a
# next-task call costs one round trip here instead of six.
_CLAIM_SQL = """
WITH claimed AS (
    UPDATE assignment_task t SET leased_count = t.leased_count + 1
    WHERE t.id = ({candidate})
    RETURNING t.id, t.project_id, t.article_id, t.segment_index, t.start_offset, t.end_offset, t.payload,
              t.required_skill, t.priority
), lease AS (
    INSERT INTO assignment_assignment
        (project_id, task_id, user_id, status, leased_at, expires_at, created_at, updated_at)
    SELECT c.project_id, c.id, %s, 'leased', %s, %s, %s, %s FROM claimed c
    ON CONFLICT (task_id, user_id) DO UPDATE SET status = EXCLUDED.status, leased_at = EXCLUDED.leased_at,
        expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at
    RETURNING id, task_id, assigned_by_id, created_at
)
SELECT c.id, c.project_id, c.article_id, c.segment_index, c.start_offset, c.end_offset, c.payload,
       c.required_skill, c.priority, l.id, l.assigned_by_id, l.created_at,
       a.external_id, a.title, a.text, a.source, a.url, a.domain,
       m.id, m.status, m.draft, m.result, m.submitted_at, m.review_state,
       (SELECT json_agg(json_build_object('id', p.id, 'model_version', p.model_version, 'result', p.result,
                                          'score', p.score) ORDER BY p.created_at DESC, p.id)
        FROM prelabel_prediction p WHERE p.task_id = c.id)
FROM claimed c
JOIN lease l ON l.task_id = c.id
JOIN documents_article a ON a.id = c.article_id
LEFT JOIN annotations_annotation m ON m.task_id = c.id AND m.user_id = %s
"""


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _claim_pg(candidates: QuerySet[Task], *, project: Project, user, now) -> Assignment | None:
    pick = candidates.values("pk").select_for_update(skip_locked=True, of=("self",))
    candidate_sql, candidate_params = pick[:1].query.get_compiler(using=pick.db).as_sql()
    expires = now + timedelta(minutes=project.lease_minutes)
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL.format(candidate=candidate_sql),
            [*candidate_params, user.pk, now, expires, now, now, user.pk],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    (task_id, project_id, article_id, segment_index, start, end, payload, skill, priority, lease_id, assigned_by_id,
     created_at, external_id, title, text, source, url, domain, mine_id, mine_status, draft, result, submitted_at,
     review_state, predictions) = row  # fmt: skip
    article = Article(
        pk=article_id, project_id=project_id, external_id=external_id, title=title, text=text, source=source,
        url=url, domain=domain,
    )  # fmt: skip
    task = Task(
        pk=task_id, project_id=project_id, article=article, segment_index=segment_index, start_offset=start,
        end_offset=end, payload=_json(payload), required_skill=skill, priority=priority,
    )  # fmt: skip
    task.queue_extras = {
        "predictions": _json(predictions) or [],
        "mine": None
        if mine_id is None
        else {
            "id": mine_id,
            "status": mine_status,
            "draft": _json(draft),
            "result": _json(result),
            "submitted_at": submitted_at,
            "review_state": review_state,
        },
    }
    return Assignment(
        pk=lease_id, project_id=project_id, task=task, user=user, status=AssignmentStatus.LEASED, leased_at=now,
        expires_at=expires, assigned_by_id=assigned_by_id, created_at=created_at, updated_at=now,
    )  # fmt: skip


def _queue_state(*, project: Project, user, now) -> dict | None:
    """Lock the user's membership row and read, in the same query, what the queue needs to know.

    Locking the membership row makes one claim per user at a time (a double click cannot lease
    two tasks). The row also brings the pause flag, the user's skills, whether the project has
    leases past expiry (the lazy expiry check) and whether the user holds or was assigned
    anything, so the common case (nothing held, nothing stale) needs no further reads.
    order_by() drops Membership's default ordering, whose join would lock the project row too.
    """
    return (
        Membership.objects.select_for_update(of=("self",))
        .filter(project=project, user=user)
        .order_by()
        .annotate(
            stale=Exists(
                Assignment.objects.filter(project=project, status=AssignmentStatus.LEASED, expires_at__lte=now)
            ),
            holds=Exists(
                Assignment.objects.filter(
                    project=project, user=user, status__in=(AssignmentStatus.LEASED, AssignmentStatus.ASSIGNED)
                )
            ),
        )
        .values("queue_paused", "user__annotator_profile__skills", "stale", "holds")
        .first()
    )


def task_next_for_user(*, project: Project, user) -> Assignment | None:
    """Return the user's live lease in the project, or lease them the best eligible task.

    Order: tasks a manager assigned to them; a gold task when one is due (``gold_ratio``);
    escalated tasks for experts of the flagged domain; in skill-routed projects the tasks needing
    one of their expert skills; then every other task their routing allows. Within each, higher
    priority first, then (``queue_order=uncertainty``) the least certain pre-label, then id.
    Members whose queue is paused get nothing.
    """
    now = timezone.now()
    with transaction.atomic():
        row = _queue_state(project=project, user=user, now=now)
        if row is None:
            if not user.is_superuser:
                return None
            row = {"queue_paused": False, "user__annotator_profile__skills": None, "stale": True, "holds": True}
        if row["queue_paused"]:
            return None
        if row["stale"]:
            leases_expire(project=project, now=now)  # the lazy check; beat does the rest
        skills = row["user__annotator_profile__skills"] or {}
        if row["holds"]:
            mine = list(
                Assignment.objects.filter(
                    project=project, user=user, status__in=(AssignmentStatus.LEASED, AssignmentStatus.ASSIGNED)
                )
                .select_related("task", "task__article")
                .order_by("leased_at", "id")[: CANDIDATE_BATCH * 5]
            )
            for assignment in mine:
                if assignment.status == AssignmentStatus.LEASED and assignment.expires_at > now:
                    return assignment
            assigned_ids = [a.task_id for a in mine if a.status == AssignmentStatus.ASSIGNED]
            if assigned_ids:
                claimed = _claim_first(
                    selectors.assigned_candidates(project=project, user=user, task_ids=assigned_ids),
                    project=project,
                    user=user,
                    now=now,
                )
                if claimed is not None:
                    return claimed
        if project.gold_ratio > 0:
            served = Assignment.objects.filter(project=project, user=user).exclude(status=AssignmentStatus.ASSIGNED)
            if strategies.gold_turn(
                ratio=project.gold_ratio, project_id=project.pk, user_id=user.pk, served=served.count()
            ):
                gold = selectors.gold_candidates(project=project, user=user, skills=skills, now=now)
                claimed = _claim_first(gold, project=project, user=user, now=now, capped=False)
                if claimed is not None:
                    return claimed
        passes = []
        if selectors.expert_domains(skills):
            passes.append(selectors.flagged_candidates(project=project, user=user, skills=skills))
            if project.assignment_policy == AssignmentPolicy.SKILL:
                passes.append(selectors.expert_candidates(project=project, user=user, skills=skills))
        if project.assignment_policy != AssignmentPolicy.MANUAL:
            passes.append(selectors.general_candidates(project=project, user=user, skills=skills, now=now))
        for candidates in passes:
            claimed = _claim_first(candidates, project=project, user=user, now=now)
            if claimed is not None:
                return claimed
    return None


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
