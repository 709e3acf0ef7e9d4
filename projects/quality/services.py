"""Writes for quality: debounced recomputation, stored snapshots, consensus rows, gold alerts.

Flow: ``annotation.submitted`` → ``quality_mark_dirty`` (sets ``dirty_at``; enqueues one delayed
``quality.recompute`` unless one is already scheduled) → ``quality_recompute`` (claims the
project with a conditional update, streams the annotations once through ``compute.Accumulator``,
stores a snapshot, upserts only changed consensus rows and ``Task.agreement`` values, raises
gold alerts). A recompute that finds nothing changed since the last one does nothing, so
repeated or duplicated jobs are harmless. ``quality.sweep`` (beat) catches lost messages.
"""

from __future__ import annotations

import itertools
import logging
import time
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotator.db import hot_cursor
from projects.annotations.models import Annotation, AnnotationStatus
from projects.assignment.models import Task
from projects.core.exceptions import ValidationFailed
from projects.core.models import AnnotatorProfile, Membership, Project
from projects.core.services import audit_log
from projects.prelabel.selectors import prediction_acceptance
from projects.quality.compute import Accumulator, Row, TaskInfo
from projects.quality.models import (
    AnnotatorQuality,
    ConsensusMethod,
    GoldAlert,
    QualitySettings,
    QualitySnapshot,
    TaskConsensus,
)

logger = logging.getLogger(__name__)

KEEP_SNAPSHOTS = 20
STALE_RUN = timedelta(hours=1)  # a claim older than this belongs to a dead worker
CHUNK = 5000
SETTINGS_FIELDS = {"gold_threshold", "gold_min_answers", "pause_on_alert", "consensus_method", "bootstrap_samples"}


def quality_settings_for(project: Project) -> QualitySettings:
    row, _ = QualitySettings.objects.get_or_create(project=project)
    return row


@transaction.atomic
def quality_settings_update(*, project: Project, actor, **changes: Any) -> QualitySettings:
    """Change a project's quality options (threshold, minimum answers, pausing, method, bootstrap)."""
    row = QualitySettings.objects.select_for_update().get(pk=quality_settings_for(project).pk)
    errors = {}
    if "gold_threshold" in changes and not 0 <= changes["gold_threshold"] <= 1:
        errors["gold_threshold"] = "must be between 0 and 1"
    if "consensus_method" in changes and changes["consensus_method"] not in ConsensusMethod.values:
        errors["consensus_method"] = f"must be one of {', '.join(ConsensusMethod.values)}"
    if "bootstrap_samples" in changes and not 0 <= changes["bootstrap_samples"] <= 5000:
        errors["bootstrap_samples"] = "must be between 0 and 5000"
    for key in set(changes) - SETTINGS_FIELDS:
        errors[key] = "is not a quality setting"
    if errors:
        raise ValidationFailed(f"Invalid quality settings: {next(iter(errors))}.", fields=errors)
    for key, value in changes.items():
        setattr(row, key, value)
    row.dirty_at = timezone.now()  # new options change the figures
    row.save()
    audit_log(actor=actor, action="quality.settings_updated", project=project, target=row, data=changes)
    return row


# The states quality_mark_dirty acts on, compared in SQL: the handler runs after every submission,
# so the statement is prepared once per connection (``annotator.db.hot_cursor``).
_DIRTY_STATE_SQL = """SELECT dirty_at IS NOT NULL AND (computed_at IS NULL OR dirty_at >= computed_at)
        AND (running_since IS NULL OR dirty_at > running_since),
    scheduled_at IS NULL OR scheduled_at < %s
FROM quality_qualitysettings WHERE project_id = %s"""


def quality_mark_dirty(*, project_id: int, delay_seconds: float) -> bool:
    """Record that the project's figures are stale. True when the caller should enqueue a recompute.

    Runs after every submission, so it reads first and writes only when something changes: while
    the project is already marked stale (after the start of any recompute) and a recompute is
    scheduled, a submission costs one indexed read and takes no row lock. The row is created
    once, by the first submission.
    """
    now = timezone.now()
    # One scheduled recompute at a time; a schedule older than a few delays was lost.
    stale = now - timedelta(seconds=max(3 * delay_seconds, 60))
    with hot_cursor() as cursor:
        cursor.execute(_DIRTY_STATE_SQL, [connection.ops.adapt_datetimefield_value(stale), project_id])
        row = cursor.fetchone()
    if row is None:
        QualitySettings.objects.get_or_create(project_id=project_id)
        row = (False, True)
    # already_dirty: stale for every recompute that could finish, marked after the last finished
    # one started and after the running one (if any) started, which therefore cannot clear it.
    already_dirty, schedule_due = row
    if not already_dirty:
        QualitySettings.objects.filter(project_id=project_id).update(dirty_at=now)
    if not schedule_due:
        return False
    return bool(
        QualitySettings.objects.filter(project_id=project_id)
        .filter(Q(scheduled_at__isnull=True) | Q(scheduled_at__lt=stale))
        .update(scheduled_at=now)
    )


def projects_needing_recompute() -> list[int]:
    """Projects whose figures are stale and that no worker is computing."""
    now = timezone.now()
    return list(
        QualitySettings.objects.filter(dirty_at__isnull=False)
        .filter(Q(computed_at__isnull=True) | Q(dirty_at__gte=F("computed_at")))
        .filter(Q(running_since__isnull=True) | Q(running_since__lt=now - STALE_RUN))
        .values_list("project_id", flat=True)
    )


def quality_recompute(*, project_id: int, force: bool = False) -> str:
    """Recompute and store every figure of a project. Returns "computed", "clean", "busy" or "gone"."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return "gone"
    row = quality_settings_for(project)
    started = timezone.now()
    claimed = (
        QualitySettings.objects.filter(pk=row.pk)
        .filter(Q(running_since__isnull=True) | Q(running_since__lt=started - STALE_RUN))
        .update(running_since=started, scheduled_at=None)
    )
    if not claimed:
        return "busy"
    try:
        row.refresh_from_db()
        if not force and row.computed_at and (row.dirty_at is None or row.dirty_at < row.computed_at):
            return "clean"
        _compute_and_store(project, row)
        QualitySettings.objects.filter(pk=row.pk).update(computed_at=started)
        return "computed"
    finally:
        QualitySettings.objects.filter(pk=row.pk).update(running_since=None)


def _compute_and_store(project: Project, row: QualitySettings) -> QualitySnapshot:
    t0 = time.perf_counter()
    submitted = Annotation.objects.filter(project=project, status=AnnotationStatus.SUBMITTED)
    user_ids = set(submitted.values_list("user_id", flat=True).distinct())
    usernames = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    skills = dict(AnnotatorProfile.objects.filter(user_id__in=user_ids).values_list("user_id", "skills"))
    gold = {
        pk: TaskInfo(True, answer, skill)
        for pk, answer, skill in Task.objects.filter(project=project, is_gold=True).values_list(
            "pk", "gold_answer", "required_skill"
        )
    }
    acc = Accumulator(
        schema=project.label_schema,
        overlap=project.overlap,
        skills=skills,
        usernames=usernames,
        consensus_method=row.consensus_method,
        bootstrap_samples=row.bootstrap_samples,
        seed=project.pk,
    )
    rows = (
        submitted.order_by("task_id", "id")
        .values_list("task_id", "user_id", "result", "lead_time", "submitted_at", "prediction_id")
        .iterator(chunk_size=CHUNK)
    )
    plain = TaskInfo()
    for task_id, group in itertools.groupby(rows, key=lambda r: r[0]):
        acc.add_task(task_id, gold.get(task_id, plain), [Row(r[1], r[2] or {}, r[3], r[4], r[5]) for r in group])
    result = acc.finish()
    # Pre-label acceptance comes from the pre-labeling app's own definition (accepted/edited/discarded).
    result.figures["prelabel"] = prediction_acceptance(project)

    with transaction.atomic():
        snapshot = QualitySnapshot.objects.create(
            project=project,
            figures=result.figures,
            annotation_count=acc.annotations,
            task_count=Task.objects.filter(project=project).count(),
            duration_seconds=0.0,
        )
        AnnotatorQuality.objects.bulk_create(
            [AnnotatorQuality(snapshot=snapshot, **a) for a in result.annotators], batch_size=1000
        )
        _store_consensus(project, result.consensus, row.consensus_method)
        _store_task_agreement(project, result.task_agreement)
        old = QualitySnapshot.objects.filter(project=project).order_by("-created_at", "-id")[KEEP_SNAPSHOTS:]
        QualitySnapshot.objects.filter(pk__in=list(old.values_list("pk", flat=True))).delete()
        _raise_gold_alerts(project, row, result.annotators)
    snapshot.duration_seconds = round(time.perf_counter() - t0, 3)
    QualitySnapshot.objects.filter(pk=snapshot.pk).update(duration_seconds=snapshot.duration_seconds)
    logger.info("quality: project %s recomputed in %.2fs", project.pk, snapshot.duration_seconds)
    return snapshot


def _store_consensus(project: Project, consensus: dict[str, dict[int, tuple]], method: str) -> None:
    existing = {
        (t, f): (label, conf, votes, m)
        for t, f, label, conf, votes, m in TaskConsensus.objects.filter(project=project).values_list(
            "task_id", "field", "label", "confidence", "votes", "method"
        )
    }
    wanted: dict[tuple[int, str], tuple] = {}
    for name, per_task in consensus.items():
        for task_id, (label, confidence, votes) in per_task.items():
            plain = list(label) if isinstance(label, tuple) else label
            wanted[(task_id, name)] = (plain, round(confidence, 6), votes, method)
    changed = [
        TaskConsensus(project=project, task_id=t, field=f, label=v[0], confidence=v[1], votes=v[2], method=v[3])
        for (t, f), v in wanted.items()
        if existing.get((t, f)) != v
    ]
    TaskConsensus.objects.bulk_create(
        changed,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["task", "field"],
        update_fields=["label", "confidence", "votes", "method", "updated_at"],
    )
    gone = [key for key in existing if key not in wanted]
    for field_name, keys in itertools.groupby(sorted(gone, key=lambda k: k[1]), key=lambda k: k[1]):
        ids = [t for t, _ in keys]
        for i in range(0, len(ids), CHUNK):
            TaskConsensus.objects.filter(project=project, field=field_name, task_id__in=ids[i : i + CHUNK]).delete()


def _store_task_agreement(project: Project, agreement: dict[int, float | None]) -> None:
    changed = []
    for pk, current in Task.objects.filter(project=project).values_list("pk", "agreement").iterator(chunk_size=CHUNK):
        new = agreement.get(pk)
        new = None if new is None else round(new, 6)
        if new != current:
            changed.append(Task(pk=pk, agreement=new))
    Task.objects.bulk_update(changed, ["agreement"], batch_size=1000)


def _raise_gold_alerts(project: Project, row: QualitySettings, annotators: list[dict]) -> None:
    open_alerts = set(
        GoldAlert.objects.filter(project=project, resolved_at__isnull=True).values_list("user_id", flat=True)
    )
    for a in annotators:
        acc = a["gold_accuracy"]
        if acc is None or a["gold_answers"] < row.gold_min_answers or acc >= row.gold_threshold:
            continue
        if a["user_id"] in open_alerts:
            continue
        paused = False
        if row.pause_on_alert:
            paused = bool(
                Membership.objects.filter(project=project, user_id=a["user_id"], queue_paused=False).update(
                    queue_paused=True
                )
            )
        alert = GoldAlert.objects.create(
            project=project,
            user_id=a["user_id"],
            accuracy=acc,
            threshold=row.gold_threshold,
            gold_answers=a["gold_answers"],
            paused_queue=paused,
        )
        audit_log(
            actor=None,
            action="quality.gold_alert",
            project=project,
            target=alert,
            data={"user_id": a["user_id"], "accuracy": acc, "threshold": row.gold_threshold, "paused": paused},
        )


@transaction.atomic
def gold_alert_resolve(*, alert: GoldAlert, actor, resume_queue: bool = False) -> GoldAlert:
    """Close an alert; ``resume_queue`` also unpauses the annotator's queue."""
    alert = GoldAlert.objects.select_for_update().get(pk=alert.pk)
    if alert.resolved_at is None:
        alert.resolved_at = timezone.now()
        alert.resolved_by = actor
        alert.save(update_fields=["resolved_at", "resolved_by"])
    if resume_queue:
        Membership.objects.filter(project_id=alert.project_id, user_id=alert.user_id).update(queue_paused=False)
    audit_log(
        actor=actor,
        action="quality.gold_alert_resolved",
        project=alert.project,
        target=alert,
        data={"resume_queue": resume_queue},
    )
    return alert
