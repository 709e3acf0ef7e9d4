"""Reads on annotations and reviews that depend on the user or cross relations.

For exports and quality: ``reviewed_label_for_tasks(task_ids)`` returns each task's label after
review: the adjudicated ``TaskLabel`` when there is one, else the most recently reviewed
annotation's reviewed result (the result if accepted, the reviewer's correction if fixed). Tasks
with neither are absent from the answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone

from projects.annotations.models import Annotation, AnnotationStatus, Review, ReviewState, TaskLabel
from projects.annotations.reviews import disagreeing_fields, effective_result, pending_for_reviewer
from projects.assignment.models import Task
from projects.core.models import Project

CHUNK = 500
ADJUDICATION_SCAN_LIMIT = 5_000


def reviewed_label_for_tasks(task_ids: Iterable[int]) -> dict[int, dict]:
    """Task id → reviewed label (see the module docstring for the precedence)."""
    ids = list(dict.fromkeys(task_ids))
    out: dict[int, dict] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        out.update(TaskLabel.objects.filter(task_id__in=chunk).values_list("task_id", "result"))
        rest = [task_id for task_id in chunk if task_id not in out]
        rows = (
            Annotation.objects.filter(
                task_id__in=rest,
                status=AnnotationStatus.SUBMITTED,
                review_state__in=(ReviewState.ACCEPTED, ReviewState.FIXED),
            )
            .order_by("task_id", "updated_at", "id")
            .values_list("task_id", "reviewed_result", "result")
        )
        for task_id, reviewed, result in rows:  # the last reviewed one of a task wins
            out[task_id] = reviewed if reviewed is not None else result
    return out


def review_queue(*, project: Project, reviewer) -> QuerySet[Annotation]:
    """Pending annotations this reviewer may take: not their own, not held by another reviewer."""
    return pending_for_reviewer(project=project, reviewer=reviewer, now=timezone.now()).select_related("user", "task")


def reviews_of(*, annotation: Annotation) -> QuerySet[Review]:
    return Review.objects.filter(annotation=annotation).select_related("reviewer").order_by("created_at", "id")


def annotations_returned_to(*, project: Project, user) -> QuerySet[Annotation]:
    """The user's rejected annotations, waiting for them to fix and resubmit."""
    return (
        Annotation.objects.filter(
            project=project, user=user, status=AnnotationStatus.SUBMITTED, review_state=ReviewState.REJECTED
        )
        .select_related("task")
        .order_by("updated_at", "id")
    )


def review_counts(*, project: Project) -> dict[str, int]:
    rows = (
        Annotation.objects.filter(project=project, status=AnnotationStatus.SUBMITTED)
        .values("review_state")
        .annotate(n=Count("id"))
    )
    return {row["review_state"] or "none": row["n"] for row in rows}


def task_disagreement(*, task: Task) -> tuple[list[Annotation], list[str]]:
    """The task's submitted (not rejected) annotations and the fields on which they differ."""
    annotations = list(
        task.annotations.filter(status=AnnotationStatus.SUBMITTED)
        .exclude(review_state=ReviewState.REJECTED)
        .select_related("user")
        .order_by("id")
    )
    return annotations, disagreeing_fields([effective_result(a) for a in annotations])


def tasks_with_disagreement(
    *, project: Project, after: int = 0, limit: int = 50, include_adjudicated: bool = False
) -> tuple[list[dict], int | None]:
    """Tasks whose submitted annotations disagree, by task id after ``after``.

    Returns (rows, next_after); each row has ``task_id``, ``fields`` (the disagreeing field names),
    ``annotations`` and ``label``. One call scans at most ``ADJUDICATION_SCAN_LIMIT`` candidate
    tasks, so ``next_after`` may be set even when fewer than ``limit`` rows came back.
    """
    # From the annotations, not the tasks: the (project, status, task) index walks only submitted
    # annotations, in task order, so a project with few annotated tasks is not read task by task
    # (100,000 tasks, 20,000 annotations: 124 ms became a few).
    candidates = (
        Annotation.objects.filter(project=project, status=AnnotationStatus.SUBMITTED, task_id__gt=after)
        .exclude(review_state=ReviewState.REJECTED)
        .values("task_id")
        .annotate(n=Count("id"))
        .filter(n__gte=2)
        .order_by("task_id")
    )
    if not include_adjudicated:
        candidates = candidates.exclude(Exists(TaskLabel.objects.filter(task_id=OuterRef("task_id"))))
    rows: list[dict] = []
    scanned = 0
    last_id = after
    while len(rows) < limit and scanned < ADJUDICATION_SCAN_LIMIT:
        batch = list(candidates.filter(task_id__gt=last_id).values_list("task_id", flat=True)[:CHUNK])
        if not batch:
            return rows, None
        grouped: dict[int, list[Annotation]] = {task_id: [] for task_id in batch}
        annotations = (
            Annotation.objects.filter(task_id__in=batch, status=AnnotationStatus.SUBMITTED)
            .exclude(review_state=ReviewState.REJECTED)
            .select_related("user")
            .order_by("task_id", "id")
        )
        for annotation in annotations:
            grouped[annotation.task_id].append(annotation)
        labels = dict(TaskLabel.objects.filter(task_id__in=batch).values_list("task_id", "result"))
        for task_id in batch:
            scanned += 1
            last_id = task_id
            fields = disagreeing_fields([effective_result(a) for a in grouped[task_id]])
            if fields:
                rows.append(
                    {
                        "task_id": task_id,
                        "fields": fields,
                        "annotations": grouped[task_id],
                        "label": labels.get(task_id),
                    }
                )
                if len(rows) >= limit:
                    break
    more = candidates.filter(task_id__gt=last_id).exists()
    return rows, last_id if more else None
