"""The statements of a submission, written out as SQL: the submit path runs them on every call, and
building them through the ORM cost more CPU than everything else the request does.

A submission is: lock the task row, read what the rules need, then write the annotation, the
user's assignment and the task counters. ``projects.annotations.services.annotation_submit``
holds the rules; this module only reads and writes.

PostgreSQL (READ COMMITTED): the lock and the read are two statements sent in one round trip.
The read must be a statement of its own, started once the lock is held: a statement that waited
for a row lock sees the locked row as it is now but every other row as it was when the statement
began, so a user's second, concurrent submit of the same task would read their assignment from
before the first one committed. The three writes are one statement (data-modifying CTEs).
The statements run on ``annotator.db.hot_cursor``: prepared once per connection, their values
bound on the server (the lock and the read go in one pipeline); with prepared statements turned
off (or a libpq without pipeline mode), the lock and the read are sent as one string of two statements.

SQLite: transactions are IMMEDIATE, so the transaction already holds the write lock when it
reads; the read is one statement and the writes are three (SQLite has no data-modifying CTEs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotator import db
from annotator.db import hot_cursor, json_value

# Who may work on a task (``projects.assignment.api.task_for_user``'s rule): a member with the
# reviewer role or above, or a member who holds or held it (an assignment or an annotation);
# superusers who are not members. Others are answered 404, and their rows are never locked.
# The subqueries name the task by its parameter, not by ``t.id``: correlated, PostgreSQL may run
# them (a prepared statement's generic plan especially) as a hash of every assignment the user
# ever had, a cost that grows with the annotator's history; this way each is one probe of a
# unique (task, user) index, whatever the history.
_VISIBLE = """CASE WHEN m.id IS NULL THEN %(superuser)s
    ELSE m.role IN ('reviewer', 'manager', 'admin')
        OR EXISTS (SELECT 1 FROM assignment_assignment v WHERE v.task_id = %(task)s AND v.user_id = %(user)s)
        OR EXISTS (SELECT 1 FROM annotations_annotation w WHERE w.task_id = %(task)s AND w.user_id = %(user)s)
    END"""
_MEMBER = "LEFT JOIN projects_membership m ON m.project_id = t.project_id AND m.user_id = %(user)s"

_LOCK = "SELECT t.id FROM assignment_task t {member} WHERE t.id = %(task)s AND {visible} FOR UPDATE OF t"

# The task text is the article's, or the segment [start_offset, end_offset) of it; substr counts
# characters (code points) on both databases, as Python's slicing does.
_READ = """SELECT t.project_id, t.submitted_count, t.payload,
    p.label_schema, p.overlap, p.review_policy, p.review_sample_percent, p.guidelines_version,
    CASE WHEN t.start_offset IS NULL THEN a.text
         WHEN t.end_offset IS NULL THEN substr(a.text, t.start_offset + 1)
         ELSE substr(a.text, t.start_offset + 1, t.end_offset - t.start_offset) END,
    g.status, g.expires_at, n.id, n.status, n.review_state,
    EXISTS (SELECT 1 FROM prelabel_prediction r WHERE r.id = %(prediction)s AND r.task_id = t.id),
    (SELECT count(*) FROM assignment_assignment h WHERE h.task_id = t.id
        AND (h.status = 'submitted' OR (h.status = 'leased' AND h.expires_at > %(now)s)))
FROM assignment_task t
JOIN projects_project p ON p.id = t.project_id
JOIN documents_article a ON a.id = t.article_id
{member}
LEFT JOIN assignment_assignment g ON g.task_id = t.id AND g.user_id = %(user)s
LEFT JOIN annotations_annotation n ON n.task_id = t.id AND n.user_id = %(user)s
WHERE t.id = %(task)s AND {visible}"""

# An accepted or fixed annotation is final: the upsert leaves it alone and returns no row, also
# when a reviewer's verdict landed after the read (verdicts do not lock the task).
_UPSERT_ANNOTATION = """INSERT INTO annotations_annotation
    (project_id, task_id, user_id, result, draft, status, review_state, reviewed_result, lead_time,
     prediction_id, guideline_version, created_at, updated_at, submitted_at)
VALUES (%(project)s, %(task)s, %(user)s, {result}, NULL, 'submitted', %(state)s, NULL, %(lead)s,
        %(prediction)s, %(guideline)s, %(now)s, %(now)s, %(now)s)
ON CONFLICT (task_id, user_id) DO UPDATE SET
    result = excluded.result, draft = NULL, status = 'submitted',
    review_state = CASE WHEN annotations_annotation.review_state IN ('rejected', 'pending') THEN 'pending'
                        ELSE excluded.review_state END,
    reviewed_result = NULL,
    lead_time = CASE WHEN annotations_annotation.lead_time + excluded.lead_time < %(max_lead)s
                     THEN annotations_annotation.lead_time + excluded.lead_time ELSE %(max_lead)s END,
    prediction_id = COALESCE(excluded.prediction_id, annotations_annotation.prediction_id),
    guideline_version = excluded.guideline_version, updated_at = excluded.updated_at,
    submitted_at = excluded.submitted_at
WHERE annotations_annotation.review_state NOT IN ('accepted', 'fixed')"""
_RETURNING = " RETURNING id, review_state, lead_time, prediction_id, created_at"
_SELECT_ANNOTATION = (
    "SELECT id, review_state, lead_time, prediction_id, created_at FROM annotations_annotation"
    " WHERE task_id = %(task)s AND user_id = %(user)s AND updated_at = %(now)s"
)

# An upsert: a manager's assignment may have been written meanwhile (assigning does not lock the task).
_UPSERT_ASSIGNMENT = """INSERT INTO assignment_assignment
    (project_id, task_id, user_id, status, created_at, updated_at)
VALUES (%(project)s, %(task)s, %(user)s, 'submitted', %(now)s, %(now)s)
ON CONFLICT (task_id, user_id) DO UPDATE SET
    status = 'submitted', expires_at = NULL, updated_at = excluded.updated_at"""

_UPDATE_TASK = "UPDATE assignment_task SET leased_count = leased_count + %(leased_delta)s{counts} WHERE id = %(task)s"
_COUNTS = ", submitted_count = %(count)s, is_complete = %(complete)s"


def _pg_write(assignment: bool, counts: bool | None) -> str:
    parts = [f"annotation AS ({_UPSERT_ANNOTATION.format(result='%(result)s::jsonb')}{_RETURNING})"]
    if assignment:
        parts.append(f"assignment AS ({_UPSERT_ASSIGNMENT})")
    if counts is not None:
        parts.append(f"task AS ({_UPDATE_TASK.format(counts=_COUNTS if counts else '')})")
    return "WITH " + ",\n".join(parts) + "\nSELECT * FROM annotation"


# The PostgreSQL statements are psycopg's to prepare (``hot_cursor``), never ``PREPARE``d by name
# here: psycopg answers any ``ROLLBACK`` on a connection where it has prepared statements with
# ``DEALLOCATE ALL``, which would drop named statements behind this module's back; its own it
# forgets and prepares again. Their text depends only on the dict keys below, not on the values.
# The lock checks who may work on the task; the read after it needs no second check.
_PG_LOCK = {
    visible: _LOCK.format(member=_MEMBER if visible else "", visible=_VISIBLE if visible else "true")
    for visible in (True, False)
}
_PG_READ = _READ.format(member="", visible="true")
_SQLITE_READ = {
    visible: _READ.format(member=_MEMBER if visible else "", visible=_VISIBLE if visible else "1")
    for visible in (True, False)
}
# (write the assignment, task update: None = none, False = leased_count only, True = with the counts)
_PG_WRITE = {(a, c): _pg_write(a, c) for a in (True, False) for c in (None, False, True)}


MAX_ID = db.MAX_ID


@dataclass(slots=True)
class Locked:
    """What a submission's rules need, read under the task lock."""

    project_id: int
    submitted_count: int
    payload: dict
    label_schema: dict
    overlap: int
    review_policy: str
    review_sample_percent: int
    guidelines_version: int
    text: str
    my_status: str | None
    my_expires_at: datetime | None
    annotation_id: int | None
    annotation_status: str | None
    review_state: str | None
    prediction_found: bool
    held: int


def _datetime(value):
    """A datetime column read with a raw cursor: aware on PostgreSQL, naive UTC (or text) on SQLite."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = parse_datetime(value)
    if settings.USE_TZ and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def lock_and_read(*, task_id: int, user, prediction_id: int | None, now: datetime, visible_only: bool) -> Locked | None:
    """Lock the task row and read the submission's facts; None when there is no such task (or,
    with ``visible_only``, when the user may not work on it). Call inside a transaction."""
    if not 0 < task_id <= MAX_ID:
        return None
    params = {
        "task": task_id,
        "user": user.pk,
        "superuser": bool(user.is_superuser),
        "prediction": prediction_id if prediction_id is not None and 0 < prediction_id <= MAX_ID else None,
        "now": connection.ops.adapt_datetimefield_value(now),
    }
    if db.pipelining():
        # One round trip; each statement gets its own snapshot (READ COMMITTED).
        with hot_cursor() as lock, hot_cursor() as cursor:
            with db.pipeline():
                lock.execute(_PG_LOCK[visible_only], params)
                cursor.execute(_PG_READ, params)
            if lock.fetchone() is None:
                return None
            row = cursor.fetchone()
    elif settings.IS_POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute(f"{_PG_LOCK[visible_only]};\n{_PG_READ}", params)
            locked = cursor.fetchone()
            cursor.nextset()
            row = cursor.fetchone()
            if locked is None:
                return None
    else:
        with connection.cursor() as cursor:
            cursor.execute(_SQLITE_READ[visible_only], params)
            row = cursor.fetchone()
    if row is None:
        return None
    (project_id, submitted_count, payload, schema, overlap, policy, percent, guidelines, text, my_status,
     my_expires_at, annotation_id, annotation_status, review_state, prediction_found, held) = row  # fmt: skip
    return Locked(
        project_id=project_id,
        submitted_count=submitted_count,
        payload=json_value(payload),
        label_schema=json_value(schema),
        overlap=overlap,
        review_policy=policy,
        review_sample_percent=percent,
        guidelines_version=guidelines,
        text=text,
        my_status=my_status,
        my_expires_at=_datetime(my_expires_at),
        annotation_id=annotation_id,
        annotation_status=annotation_status,
        review_state=review_state,
        prediction_found=bool(prediction_found),
        held=held,
    )


def write(
    *,
    locked: Locked,
    task_id: int,
    user_id: int,
    result: dict,
    state: str,
    lead: float,
    max_lead: float,
    prediction_id: int | None,
    guideline_version: int,
    now: datetime,
    write_assignment: bool,
    leased_delta: int,
    count: int | None,
    complete: bool,
) -> tuple | None:
    """Upsert the annotation, mark the assignment submitted (``write_assignment``) and move the task
    counters (``leased_delta``; ``count`` and ``complete`` on a first submission). Returns the
    annotation's (id, review_state, lead_time, prediction_id, created_at), or None when it is
    final (accepted or fixed)."""
    params = {
        "project": locked.project_id,
        "task": task_id,
        "user": user_id,
        "result": json.dumps(result),
        "state": state,
        "lead": lead,
        "max_lead": max_lead,
        "prediction": prediction_id,
        "guideline": guideline_version,
        "now": connection.ops.adapt_datetimefield_value(now),
        "leased_delta": leased_delta,
        "count": count,
        "complete": complete,
    }
    touch_task = None if not leased_delta and count is None else count is not None
    if settings.IS_POSTGRES:
        with hot_cursor() as cursor:
            cursor.execute(_PG_WRITE[(write_assignment, touch_task)], params)
            row = cursor.fetchone()
    else:
        with connection.cursor() as cursor:
            row = _sqlite_write(cursor, params, write_assignment, touch_task)
    if row is None:
        return None
    annotation_id, review_state, lead_time, prediction, created_at = row
    return annotation_id, review_state, lead_time, prediction, _datetime(created_at)


def _sqlite_write(cursor, params: dict, write_assignment: bool, touch_task: bool | None) -> tuple | None:
    upsert = _UPSERT_ANNOTATION.format(result="%(result)s")
    if connection.features.can_return_columns_from_insert:
        cursor.execute(upsert + _RETURNING, params)
        row = cursor.fetchone()
    else:  # SQLite before 3.35: no RETURNING
        cursor.execute(upsert, params)
        cursor.execute(_SELECT_ANNOTATION, params)
        row = cursor.fetchone()
    if row is None:
        return None
    if write_assignment:
        cursor.execute(_UPSERT_ASSIGNMENT, params)
    if touch_task is not None:
        cursor.execute(_UPDATE_TASK.format(counts=_COUNTS if touch_task else ""), params)
    return row


def mark_for_review(annotation_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE annotations_annotation SET review_state = 'pending' WHERE id = %s", [annotation_id])
