"""Reads for exports: the task records a writer turns into rows, snapshots and webhooks.

``export_records`` walks the project's tasks by id (keyset pagination, ``id > last``) in chunks.
On PostgreSQL each chunk of ``COPY_CHUNK_SIZE`` tasks is one binary ``COPY`` whose rows carry the
task and article columns and the task's matching annotations as one JSON array
(``_chunks_pg``); elsewhere each chunk of ``CHUNK_SIZE`` costs two queries (tasks with their
article; their annotations, by task id range: ``_chunks_orm``). Both give the same rows to the
one record builder. When the project has reviewed or adjudicated labels at all, the queries of
``reviewed_label_for_tasks`` run for each chunk's tasks (after a task id query on the COPY path).
Memory stays flat and no query runs per row.

The consolidated label of a task is its reviewed label (``reviewed_label_for_tasks``: the
adjudicated label, else the latest accepted or fixed annotation; independent of the annotator
filter) when there is one; else the consensus of the matching annotations' effective results
(reviewed result when reviewed, rejected ones left out): majority vote by default, Dawid–Skene
for choice and pairwise fields with ``consensus=dawid_skene``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from itertools import chain
from typing import Any

import orjson
from django.db import connection
from django.db.models import (
    Aggregate,
    BigIntegerField,
    BooleanField,
    Exists,
    F,
    FloatField,
    Func,
    JSONField,
    OuterRef,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.functions import Cast
from psycopg import pq

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
# Tasks per COPY: below PostgreSQL's default jit_above_cost for this query, few enough round trips.
COPY_CHUNK_SIZE = 5000

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
    annotations = annotations_matching(project=project, options=options).filter(task=OuterRef("pk"))
    return _tasks_filtered(project=project, options=options).filter(Exists(annotations))


def _tasks_filtered(*, project: Project, options: ExportOptions) -> QuerySet:
    """Tasks that pass the task-level filters (annotated or not)."""
    qs = Task.objects.filter(project=project)
    if options.gold == "exclude":
        qs = qs.filter(is_gold=False)
    elif options.gold == "only":
        qs = qs.filter(is_gold=True)
    if options.skill:
        qs = qs.filter(required_skill=options.skill)
    if options.min_agreement is not None:
        qs = qs.filter(agreement__gte=options.min_agreement)
    return qs


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


def _annotation(aid, user, status, state, result, reviewed, lead, submitted, gv) -> dict:
    return {
        "id": aid,
        "annotator": user,
        "status": status,
        "review_state": state,
        "result": result,
        "reviewed_result": reviewed,
        "lead_time": lead,
        "submitted_at": submitted,
        "guideline_version": gv,
    }


# A chunk: the task ids it covers (None when the source does not know them in advance) and its
# rows, each ``(task row as in TASK_COLUMNS with the payload decoded, [annotation dicts])``.
Chunk = tuple[list[int] | None, Iterator[tuple[tuple, list[dict]]]]


def _chunks_orm(tasks: QuerySet, annotation_qs: QuerySet, after: int, chunk_size: int) -> Iterator[Chunk]:
    """Any database: keyset chunks of tasks, then their annotations by task id range (two queries)."""
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
                _annotation(aid, user, status, state, _loads(result), _loads(reviewed), lead, submitted, gv)
            )
        yield ids, ((row[:4] + (_loads(row[4]),) + row[5:], by_task.get(row[0], [])) for row in rows)


def _float(value) -> float | None:
    """A float column read from PostgreSQL's JSON, which writes 8.0 as 8 and NaN as "NaN"."""
    return None if value is None else float(value)


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class _JsonObject(Func):
    function = "JSON_BUILD_OBJECT"
    output_field = JSONField()


class _IsoText(Func):
    """A timestamp as ISO 8601 text, the form ``datetime.fromisoformat`` reads (as JSON writes it)."""

    template = "(TO_JSON(%(expressions)s) #>> '{}')"
    output_field = TextField()


# An annotation as JSON (the keys of ``_annotation``), built in the COPY's query.
PG_ANNOTATION_FIELDS = (
    ("id", "id"),
    ("annotator", "user__username"),
    ("status", "status"),
    ("review_state", "review_state"),
    ("result", "result"),
    ("reviewed_result", "reviewed_result"),
    ("lead_time", "lead_time"),
    ("submitted_at", "submitted_at"),
    ("guideline_version", "guideline_version"),
)
# The COPY's columns, cast so that their binary form is exactly these types.
COPY_COLUMNS = (
    ("id", BigIntegerField, "int8"),
    ("segment_index", BigIntegerField, "int8"),
    ("start_offset", BigIntegerField, "int8"),
    ("end_offset", BigIntegerField, "int8"),
    ("payload", TextField, "text"),
    ("is_gold", BooleanField, "bool"),
    ("required_skill", TextField, "text"),
    ("agreement", FloatField, "float8"),
    ("article__external_id", TextField, "text"),
    ("article__title", TextField, "text"),
    ("article__url", TextField, "text"),
    ("article__source", TextField, "text"),
    ("article__domain", TextField, "text"),
    ("article__published_at", None, "text"),
    ("article__text", TextField, "text"),
)
COPY_TYPES = [kind for _name, _field, kind in COPY_COLUMNS] + ["text"]


def _pg_row_sql(tasks: QuerySet, annotation_qs: QuerySet, limit: int | None = None) -> tuple[str, tuple]:
    """The task columns, then the task's matching annotations as one JSON array (PostgreSQL only).

    Texts travel as they are (binary COPY: no escaping on either side); only the few small
    annotation values are built as JSON, in the same query, so there is no second round trip."""
    from django.contrib.postgres.aggregates.mixins import OrderableAggMixin

    class JsonAgg(OrderableAggMixin, Aggregate):
        function = "JSON_AGG"
        template = "%(function)s(%(expressions)s %(order_by)s)"
        output_field = JSONField()

    annotations = (
        annotation_qs.filter(task=OuterRef("pk"))
        .order_by()
        .values("task")
        .annotate(
            rows=JsonAgg(
                _JsonObject(*chain.from_iterable((Value(k), F(f)) for k, f in PG_ANNOTATION_FIELDS)), order_by="id"
            )
        )
        .values("rows")
    )
    columns = {
        f"export_{i}": _IsoText(name) if field is None else Cast(name, field())
        for i, (name, field, _kind) in enumerate(COPY_COLUMNS)
    }
    columns["export_annotations"] = Cast(Subquery(annotations), TextField())
    qs = tasks.order_by("id").annotate(**columns).values_list(*columns)[:limit]
    return qs.query.sql_with_params()


def _log(sql: str) -> None:
    if connection.queries_logged:  # visible to CaptureQueriesContext and DEBUG like any other query
        connection.queries_log.append({"sql": sql, "time": "0.000"})


@contextmanager
def _serial_plan(cursor) -> Iterator[None]:
    """No parallel workers for the COPY: its rows would go through their queue (every text copied
    once more) to be read by the leader, which runs the annotation subquery alone anyway. The
    session's own value comes back afterwards (unless the transaction failed: that undoes it)."""
    setting = "max_parallel_workers_per_gather"
    sql = f"SELECT current_setting('{setting}'), set_config('{setting}', '0', false)"
    _log(sql)
    previous = cursor.execute(sql).fetchone()[0]
    try:
        yield
    finally:
        if cursor.connection.info.transaction_status != pq.TransactionStatus.INERROR:
            sql = f"SELECT set_config('{setting}', %s, false)"
            _log(sql % repr(previous))
            cursor.execute(sql, (previous,))


def _copy_rows(sql: str, params: tuple) -> Iterator[tuple[tuple, list[dict] | None]]:
    """Stream the rows of ``sql`` with ``COPY ... TO STDOUT (FORMAT BINARY)``: PostgreSQL keeps
    sending while the rows already received are written out, and psycopg parses them in C.
    A task without matching annotations comes with None. Closing the generator cancels the COPY."""
    statement = f"COPY ({sql}) TO STDOUT (FORMAT BINARY)"
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, _serial_plan(cursor):
        _log(statement % tuple(repr(p) for p in params))
        with cursor.copy(statement, params) as copy:
            copy.set_types(COPY_TYPES)
            while (row := copy.read_row()) is not None:
                tid, seg, start, end, payload, gold, skill, agreement, ext, title, url, src, domain, pub, text, anns = (
                    row
                )
                if anns is None:
                    yield row, None
                    continue
                annotations = orjson.loads(anns)
                for ann in annotations:  # JSON has neither datetimes nor floats written as floats (8.0 is 8)
                    ann["lead_time"], ann["submitted_at"] = _float(ann["lead_time"]), _when(ann["submitted_at"])
                yield (
                    (tid, seg, start, end, _loads(payload), gold, skill, agreement, ext, title, url, src, domain)
                    + (_when(pub), text),
                    annotations,
                )


def _copy_chunks(tasks: QuerySet, annotation_qs: QuerySet, after: int, chunk_size: int) -> Iterator:
    """The annotated tasks in COPYs of ``chunk_size`` tasks by keyset. Each COPY is planned as an
    index walk that streams from its first row (one COPY of everything would be sorted first,
    and JIT-compiled); a task is probed once, for its annotations, and skipped when it has none."""
    last = after
    while True:
        count = 0
        with closing(_copy_rows(*_pg_row_sql(tasks.filter(id__gt=last), annotation_qs, chunk_size))) as rows:
            for row, annotations in rows:
                count += 1
                last = row[0]
                if annotations is not None:
                    yield row, annotations
        if count < chunk_size:
            return


def _annotated(rows: Iterator) -> Iterator:
    with closing(rows):
        for row, annotations in rows:
            if annotations is not None:
                yield row, annotations


def _chunks_pg(
    project: Project, options: ExportOptions, annotation_qs: QuerySet, after: int, chunk_size: int, *, need_ids: bool
) -> Iterator[Chunk]:
    """PostgreSQL: the same rows as ``_chunks_orm``, streamed by COPY: one query per chunk, or,
    when the caller needs each chunk's task ids first (reviewed labels), an id query and a COPY."""
    tasks = _tasks_filtered(project=project, options=options)
    if not need_ids:
        yield None, _copy_chunks(tasks, annotation_qs, after, chunk_size)
        return
    matching = tasks_matching(project=project, options=options).order_by("id")
    last = after
    while ids := list(matching.filter(id__gt=last).values_list("id", flat=True)[:chunk_size]):
        yield ids, _annotated(_copy_rows(*_pg_row_sql(tasks.filter(id__gt=last, id__lte=ids[-1]), annotation_qs)))
        last = ids[-1]


def export_records(
    *,
    project: Project,
    options: ExportOptions,
    after: int | None = 0,
    chunk_size: int | None = None,
    source: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Task records in task id order, after ``after``: one per task (consolidated) or per annotation (raw).

    ``source`` is ``"copy"`` (PostgreSQL's COPY, the default there) or ``"orm"`` (chunked
    queries, any database); both give the same records. While a COPY streams, its connection
    serves nothing else: a consumer must not query the database between two records."""
    schema = project.label_schema or {}
    after = after or 0
    annotation_qs = annotations_matching(project=project, options=options)
    ds = _dawid_skene(project, options)
    # Projects without any review skip reviewed_label_for_tasks (two queries per chunk) entirely.
    has_reviewed_labels = options.mode != "raw" and (
        TaskLabel.objects.filter(project=project).exists()
        or Annotation.objects.filter(project=project, review_state__in=REVIEWED_STATES).exists()
    )
    source = source or ("copy" if connection.vendor == "postgresql" else "orm")
    if source == "copy":
        chunk_size = chunk_size or COPY_CHUNK_SIZE
        chunks = _chunks_pg(project, options, annotation_qs, after, chunk_size, need_ids=has_reviewed_labels)
    else:
        tasks = tasks_matching(project=project, options=options).order_by("id")
        chunks = _chunks_orm(tasks, annotation_qs, after, chunk_size or CHUNK_SIZE)
    raw_mode = options.mode == "raw"
    for ids, rows in chunks:
        reviewed_labels = reviewed_label_for_tasks(ids) if has_reviewed_labels else {}
        with closing(rows):  # a download closed early ends the chunk's COPY too
            for row, annotations in rows:
                tid, seg, start, end, payload, gold, skill, agreement, ext, title, url, src, domain, pub, text = row
                record = {
                    "task_id": tid,
                    "article": {
                        "external_id": ext,
                        "title": title,
                        "url": url,
                        "source": src,
                        "domain": domain,
                        "published_at": pub,
                    },
                    "segment": seg,
                    "text": text if start is None else text[start:end],
                    "payload": payload,
                    "is_gold": gold,
                    "required_skill": skill,
                    "agreement": agreement,
                    "annotations": annotations,
                }
                if raw_mode:
                    for ann in annotations:
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
