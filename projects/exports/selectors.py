"""Reads for exports: the task records a writer turns into rows, snapshots and webhooks.

``export_records`` walks the project's tasks by id (keyset pagination, ``id > last``) in chunks
of ``chunk_size``; each chunk costs two queries (tasks with their article; their annotations,
by task id range) plus, only when the project has reviewed or adjudicated labels at all, those of
``reviewed_label_for_tasks`` for the chunk's tasks. Memory stays flat and no query runs per row.

The consolidated label of a task is its reviewed label (``reviewed_label_for_tasks``: the
adjudicated label, else the latest accepted or fixed annotation; independent of the annotator
filter) when there is one; else the consensus of the matching annotations' effective results
(reviewed result when reviewed, rejected ones left out): majority vote by default, Dawid–Skene
for choice and pairwise fields with ``consensus=dawid_skene``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from django.db.models import Exists, OuterRef, QuerySet, TextField
from django.db.models.functions import Cast

from projects.annotations.models import Annotation, AnnotationStatus, ReviewState, TaskLabel
from projects.annotations.selectors import reviewed_label_for_tasks
from projects.assignment.models import Task
from projects.core.memo import project_memo
from projects.core.models import Project
from projects.exports.consolidate import majority_vote
from projects.exports.filters import ExportOptions
from projects.exports.models import ExportJob, Webhook, WebhookDelivery
from projects.quality.selectors import consensus_for_tasks

CHUNK_SIZE = 2000

TASK_COLUMNS = (
    "id",
    "segment_index",
    "start_offset",
    "end_offset",
    "payload_json",
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
    "result_json",
    "lead_time",
    "submitted_at",
    "guideline_version",
    "reviewed_json",
)


REVIEWED_STATES = (ReviewState.ACCEPTED, ReviewState.FIXED)


def _text(field: str) -> Cast:
    """A JSON column read as its text, decoded by orjson (several times faster than json.loads)."""
    return Cast(field, TextField())


def _loads(raw: str | None):
    return None if raw is None else orjson.loads(raw)


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


def effective_result(ann: dict) -> dict:
    """The annotation's label as it stands: the reviewed result when there is one."""
    return ann["reviewed_result"] if ann["reviewed_result"] is not None else ann["result"]


def _consolidate(record: dict, schema: dict, reviewed: dict | None, ds: dict[str, dict]) -> None:
    if reviewed is not None:
        record["label"], record["label_source"], record["confidence"] = reviewed, "review", 1.0
        return
    annotations = record["annotations"]
    votes = [effective_result(a) for a in annotations if a["review_state"] != ReviewState.REJECTED]
    label, confidence = majority_vote(votes, schema)
    source = "none" if not votes else ("single" if len(votes) == 1 else "majority")
    if ds and len(votes) > 1:
        confidences = [confidence]
        for name, by_task in ds.items():
            found = by_task.get(record["task_id"])
            if found is not None:
                value = found.label
                label[name] = {"choice": value} if _is_pairwise(schema, name) else value
                confidences.append(found.confidence)
        source, confidence = "dawid_skene", round(min(confidences), 4)
    record["label"], record["label_source"], record["confidence"] = label, source, confidence


def _is_pairwise(schema: dict, name: str) -> bool:
    return any(f["name"] == name and f["type"] == "pairwise" for f in schema.get("fields", []))


def _dawid_skene(project: Project, options: ExportOptions) -> dict[str, dict]:
    """Dawid–Skene per choice/pairwise field, fitted once over the whole project before streaming
    (its memory grows with the number of annotations of those fields, not with the file)."""
    if options.consensus != "dawid_skene":
        return {}
    fields = [f for f in (project.label_schema or {}).get("fields", []) if f["type"] in ("choice", "pairwise")]
    return {f["name"]: consensus_for_tasks(project, method="dawid_skene", field=f["name"]) for f in fields}


def export_records(
    *, project: Project, options: ExportOptions, after: int = 0, chunk_size: int = CHUNK_SIZE
) -> Iterator[dict[str, Any]]:
    """Task records in task id order, after ``after``: one per task (consolidated) or per annotation (raw)."""
    schema = project.label_schema or {}
    tasks = tasks_matching(project=project, options=options).order_by("id")
    annotation_qs = annotations_matching(project=project, options=options)
    ds = _dawid_skene(project, options)
    # Projects without any review skip reviewed_label_for_tasks (two queries per chunk) entirely.
    has_reviewed_labels = options.mode != "raw" and (
        TaskLabel.objects.filter(project=project).exists()
        or Annotation.objects.filter(project=project, review_state__in=REVIEWED_STATES).exists()
    )
    last = after
    while True:
        rows = list(
            tasks.filter(id__gt=last).annotate(payload_json=_text("payload")).values_list(*TASK_COLUMNS)[:chunk_size]
        )
        if not rows:
            return
        last = rows[-1][0]
        ids = [row[0] for row in rows]
        by_task: dict[int, list[dict]] = {}
        for aid, task_id, user, status, state, result, lead, submitted, gv, reviewed in (
            # A range, not IN (...2000 ids): cheaper to build and to plan; extra rows are never read.
            annotation_qs.filter(task_id__gte=ids[0], task_id__lte=last)
            .order_by("task_id", "id")
            .annotate(result_json=_text("result"), reviewed_json=_text("reviewed_result"))
            .values_list(*ANNOTATION_COLUMNS)
        ):
            by_task.setdefault(task_id, []).append(
                {
                    "id": aid,
                    "annotator": user,
                    "status": status,
                    "review_state": state,
                    "result": _loads(result),
                    "reviewed_result": _loads(reviewed),
                    "lead_time": lead,
                    "submitted_at": submitted,
                    "guideline_version": gv,
                }
            )
        reviewed_labels = reviewed_label_for_tasks(ids) if has_reviewed_labels else {}
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
                    "published_at": pub,
                },
                "segment": seg,
                "text": text if start is None else text[start:end],
                "payload": _loads(payload),
                "is_gold": gold,
                "required_skill": skill,
                "agreement": agreement,
                "annotations": by_task.get(tid, []),
            }
            if options.mode == "raw":
                for ann in record["annotations"]:
                    fixed = ann["reviewed_result"] is not None
                    yield {
                        **record,
                        "annotations": [ann],
                        "annotation": ann,
                        "label": effective_result(ann),
                        "label_source": "review" if fixed else "annotation",
                        "confidence": None,
                    }
            else:
                _consolidate(record, schema, reviewed_labels.get(tid), ds)
                yield record


def exports_for_project(*, project: Project) -> QuerySet:
    return ExportJob.objects.filter(project=project).select_related("created_by").order_by("-id")


def webhooks_for_project(*, project: Project) -> QuerySet:
    return Webhook.objects.filter(project=project).order_by("id")


def webhook_deliveries(*, webhook: Webhook) -> QuerySet:
    return WebhookDelivery.objects.filter(webhook=webhook).order_by("-id")


WEBHOOK_MEMO = "webhooks"


def active_webhook_ids_for_event(*, project_id: int, event: str) -> list[int]:
    """Ids of the project's active webhooks subscribed to ``event``.

    Read on every domain event (every submission), so the project's (id, events) list is
    memoized; ``projects.exports.apps`` drops it whenever a webhook is saved or deleted.
    """
    hooks = project_memo(
        WEBHOOK_MEMO,
        project_id,
        lambda: [
            (pk, list(events or []))
            for pk, events in Webhook.objects.filter(project_id=project_id, is_active=True)
            .order_by("id")
            .values_list("id", "events")
        ],
    )
    return [pk for pk, events in hooks if event in events]
