"""Reads for exports: the task records a writer turns into rows, snapshots and webhooks.

``export_records`` walks the project's tasks by id (keyset pagination, ``id > last``) in chunks
of ``chunk_size``; each chunk costs three queries (tasks with their article, their annotations,
the reviews of those annotations), so memory stays flat and no query runs per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from projects.annotations.models import Annotation, AnnotationStatus, Review, ReviewState, Verdict
from projects.assignment.models import Task
from projects.core.models import Project
from projects.exports.consolidate import majority_vote
from projects.exports.filters import ExportOptions
from projects.exports.models import ExportJob, Webhook, WebhookDelivery

CHUNK_SIZE = 2000

TASK_COLUMNS = (
    "id",
    "segment_index",
    "start_offset",
    "end_offset",
    "payload",
    "is_gold",
    "required_skill",
    "agreement",
    "article__external_id",
    "article__title",
    "article__url",
    "article__source",
    "article__domain",
    "article__published_at",
    "article__text",
)
ANNOTATION_COLUMNS = (
    "id",
    "task_id",
    "user__username",
    "status",
    "review_state",
    "result",
    "lead_time",
    "submitted_at",
    "guideline_version",
)
REVIEW_COLUMNS = ("annotation_id", "verdict", "reviewer__username", "corrected_result", "comment", "created_at")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def annotations_matching(*, project: Project, options: ExportOptions) -> QuerySet:
    """Submitted annotations of the project that pass the annotation-level filters."""
    qs = Annotation.objects.filter(project=project, status=AnnotationStatus.SUBMITTED)
    if options.status == "reviewed":
        qs = qs.filter(review_state__in=[ReviewState.ACCEPTED, ReviewState.REJECTED, ReviewState.FIXED])
    elif options.status == "accepted":
        qs = qs.filter(review_state__in=[ReviewState.ACCEPTED, ReviewState.FIXED])
    if options.annotators:
        qs = qs.filter(user__username__in=options.annotators)
    if options.since:
        qs = qs.filter(submitted_at__gte=options.since_dt)
    if options.until:
        qs = qs.filter(submitted_at__lt=options.until_dt)
    return qs


def tasks_matching(*, project: Project, options: ExportOptions) -> QuerySet:
    """Tasks that pass the task-level filters and have at least one matching annotation."""
    qs = Task.objects.filter(project=project)
    if options.gold == "exclude":
        qs = qs.filter(is_gold=False)
    elif options.gold == "only":
        qs = qs.filter(is_gold=True)
    if options.skill:
        qs = qs.filter(required_skill=options.skill)
    if options.min_agreement is not None:
        qs = qs.filter(agreement__gte=options.min_agreement)
    annotations = annotations_matching(project=project, options=options).filter(task=OuterRef("pk"))
    return qs.filter(Exists(annotations))


def _reviewed_label(annotations: list[dict]) -> dict | None:
    """The latest accepting review's label: the corrected result of a fix, or the accepted result."""
    best: tuple[str, dict] | None = None
    for ann in annotations:
        review = ann["review"]
        if review is None or review["verdict"] not in (Verdict.ACCEPT, Verdict.FIX):
            continue
        label = review["corrected_result"] if review["verdict"] == Verdict.FIX else ann["result"]
        if label is not None and (best is None or review["reviewed_at"] > best[0]):
            best = (review["reviewed_at"], label)
    return best[1] if best else None


def effective_result(ann: dict) -> dict:
    review = ann["review"]
    if review is not None and review["verdict"] == Verdict.FIX and review["corrected_result"] is not None:
        return review["corrected_result"]
    return ann["result"]


def _consolidate(record: dict, schema: dict) -> None:
    annotations = record["annotations"]
    reviewed = _reviewed_label(annotations)
    if reviewed is not None:
        record["label"], record["label_source"], record["confidence"] = reviewed, "review", 1.0
        return
    votes = [effective_result(a) for a in annotations if a["review_state"] != ReviewState.REJECTED]
    label, confidence = majority_vote(votes, schema)
    source = "none" if not votes else ("single" if len(votes) == 1 else "majority")
    record["label"], record["label_source"], record["confidence"] = label, source, confidence


def export_records(
    *, project: Project, options: ExportOptions, after: int = 0, chunk_size: int = CHUNK_SIZE
) -> Iterator[dict[str, Any]]:
    """Task records in task id order, after ``after``: one per task (consolidated) or per annotation (raw)."""
    schema = project.label_schema or {}
    tasks = tasks_matching(project=project, options=options).order_by("id")
    annotation_qs = annotations_matching(project=project, options=options)
    last = after
    while True:
        rows = list(tasks.filter(id__gt=last).values_list(*TASK_COLUMNS)[:chunk_size])
        if not rows:
            return
        last = rows[-1][0]
        ids = [row[0] for row in rows]
        by_task: dict[int, list[dict]] = {}
        by_id: dict[int, dict] = {}
        for aid, task_id, user, status, state, result, lead, submitted, gv in (
            annotation_qs.filter(task_id__in=ids).order_by("task_id", "id").values_list(*ANNOTATION_COLUMNS)
        ):
            ann = {
                "id": aid,
                "annotator": user,
                "status": status,
                "review_state": state,
                "result": result,
                "lead_time": lead,
                "submitted_at": _iso(submitted),
                "guideline_version": gv,
                "review": None,
            }
            by_task.setdefault(task_id, []).append(ann)
            by_id[aid] = ann
        if by_id:
            reviews = Review.objects.filter(annotation_id__in=list(by_id)).order_by("annotation_id", "id")
            for aid, verdict, reviewer, corrected, comment, created in reviews.values_list(*REVIEW_COLUMNS):
                by_id[aid]["review"] = {  # the latest review of an annotation wins
                    "verdict": verdict,
                    "reviewer": reviewer,
                    "corrected_result": corrected,
                    "comment": comment,
                    "reviewed_at": _iso(created),
                }
        for row in rows:
            tid, seg, start, end, payload, gold, skill, agreement, ext, title, url, source, domain, pub, text = row
            record = {
                "task_id": tid,
                "article": {
                    "external_id": ext,
                    "title": title,
                    "url": url,
                    "source": source,
                    "domain": domain,
                    "published_at": _iso(pub),
                },
                "segment": seg,
                "text": text if start is None else text[start:end],
                "payload": payload,
                "is_gold": gold,
                "required_skill": skill,
                "agreement": agreement,
                "annotations": by_task.get(tid, []),
            }
            if options.mode == "raw":
                for ann in record["annotations"]:
                    fixed = ann["review"] is not None and ann["review"]["verdict"] == Verdict.FIX
                    yield {
                        **record,
                        "annotations": [ann],
                        "annotation": ann,
                        "label": effective_result(ann),
                        "label_source": "review" if fixed else "annotation",
                        "confidence": None,
                    }
            else:
                _consolidate(record, schema)
                yield record


def exports_for_project(*, project: Project) -> QuerySet:
    return ExportJob.objects.filter(project=project).select_related("created_by").order_by("-id")


def webhooks_for_project(*, project: Project) -> QuerySet:
    return Webhook.objects.filter(project=project).order_by("id")


def webhook_deliveries(*, webhook: Webhook) -> QuerySet:
    return WebhookDelivery.objects.filter(webhook=webhook).order_by("-id")


def active_webhooks_for_event(*, project_id: int, event: str) -> list[Webhook]:
    hooks = Webhook.objects.filter(project_id=project_id, is_active=True)
    return [hook for hook in hooks if event in (hook.events or [])]
