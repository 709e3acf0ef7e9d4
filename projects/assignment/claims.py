"""PostgreSQL: the claim of a next-task call, one statement, and the page it returns.

One statement picks the best candidate of a queue pass and locks it (``FOR UPDATE SKIP LOCKED``,
so concurrent annotators walk past each other's rows), counts the lease on the task row, records
or renews the user's assignment and reads what the annotator's page needs: the task, the
article, the user's own earlier draft or submission and the predictions. The row becomes an
``Assignment`` with its task and article (``Model.from_db``: the fields the page needs are
loaded, the others deferred) and the page's extras on ``task.queue_extras``.

The statements run on ``annotator.db.hot_cursor``: prepared once per connection.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from django.db import connection

from annotator.db import hot_cursor, json_value
from projects.assignment import selectors
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.models import Project
from projects.documents.models import Article

# What the annotator's page needs, read with the lease: the task, the lease, the article, the
# user's own earlier draft or submission and the predictions (``l`` is the lease, ``c`` the task).
_PAGE_COLUMNS = """
    c.id, c.project_id, c.article_id, c.segment_index, c.start_offset, c.end_offset, c.payload,
    c.required_skill, c.priority, l.id, l.assigned_by_id, l.created_at, l.leased_at, l.expires_at,
    a.external_id, a.title, a.text, a.source, a.url, a.domain,
    m.id, m.status, m.draft, m.result, m.submitted_at, m.review_state,
    (SELECT json_agg(json_build_object('id', p.id, 'model_version', p.model_version, 'result', p.result,
                                       'score', p.score) ORDER BY p.created_at DESC, p.id)
     FROM prelabel_prediction p WHERE p.task_id = c.id)
"""
_PAGE_JOINS = """
JOIN documents_article a ON a.id = c.article_id
LEFT JOIN annotations_annotation m ON m.task_id = c.id AND m.user_id = l.user_id
"""

# The user's live lease in the project (the oldest, should there be several).
_HELD = """
    SELECT id, task_id, user_id, assigned_by_id, created_at, leased_at, expires_at FROM assignment_assignment
    WHERE project_id = %s AND user_id = %s AND status = 'leased' AND expires_at > %s
    ORDER BY leased_at, id LIMIT 1
"""

# Pick, lock, count and lease in one statement. The candidate subquery ends in
# ``LIMIT 1 FOR UPDATE OF t SKIP LOCKED``; the UPDATE takes the locked row, the INSERT records (or
# renews) the user's assignment, and the final SELECT reads the page, so a claim costs one round
# trip.
#
# Unless the user holds a live lease: then nothing is claimed and that lease is returned. The
# queue state was read by the statement that waited for the membership lock, so when two calls
# of one user race (a double click) the second one's state predates the first one's lease; this
# statement starts after the lock was granted and sees it.
_CLAIM_SQL = f"""
WITH held AS ({_HELD}), claimed AS (
    UPDATE assignment_task c SET leased_count = c.leased_count + 1
    WHERE c.id = ({{candidate}}) AND NOT EXISTS (SELECT 1 FROM held)
    RETURNING c.id, c.project_id
), lease AS (
    INSERT INTO assignment_assignment
        (project_id, task_id, user_id, status, leased_at, expires_at, created_at, updated_at)
    SELECT c.project_id, c.id, %s, 'leased', %s, %s, %s, %s FROM claimed c
    ON CONFLICT (task_id, user_id) DO UPDATE SET status = EXCLUDED.status, leased_at = EXCLUDED.leased_at,
        expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at
    RETURNING id, task_id, user_id, assigned_by_id, created_at, leased_at, expires_at
), l AS (
    SELECT * FROM lease UNION ALL SELECT * FROM held
)
SELECT {_PAGE_COLUMNS}
FROM l
JOIN assignment_task c ON c.id = l.task_id
{_PAGE_JOINS}
"""

# The live lease the user already holds in the project, with its page.
_HELD_SQL = f"""
WITH l AS ({_HELD})
SELECT {_PAGE_COLUMNS}
FROM l
JOIN assignment_task c ON c.id = l.task_id
{_PAGE_JOINS}
"""


# The fields a page row loads, in model order (``Model.from_db`` expects it); the others are
# deferred, so reading one costs a query instead of giving a wrong default.
_ARTICLE_FIELDS = ("id", "project_id", "external_id", "title", "text", "source", "url", "domain")
_TASK_FIELDS = ("id", "project_id", "article_id", "segment_index", "start_offset", "end_offset", "payload",
                "required_skill", "priority")  # fmt: skip
_LEASE_FIELDS = ("id", "project_id", "task_id", "user_id", "status", "leased_at", "expires_at", "assigned_by_id",
                 "created_at")  # fmt: skip


def _page_assignment(row, *, user) -> Assignment:
    """The lease of a ``_PAGE_COLUMNS`` row, its task and article built from the row, and the
    page's extras on ``task.queue_extras`` (what ``task_work_data`` would otherwise read)."""
    (task_id, project_id, article_id, segment_index, start, end, payload, skill, priority, lease_id, assigned_by_id,
     created_at, leased_at, expires_at, external_id, title, text, source, url, domain, mine_id, mine_status, draft,
     result, submitted_at, review_state, predictions) = row  # fmt: skip
    db = connection.alias
    article = Article.from_db(
        db, _ARTICLE_FIELDS, (article_id, project_id, external_id, title, text, source, url, domain)
    )
    task = Task.from_db(
        db,
        _TASK_FIELDS,
        (task_id, project_id, article_id, segment_index, start, end, json_value(payload), skill, priority),
    )
    task.article = article
    task.queue_extras = {
        "predictions": json_value(predictions) or [],
        "mine": None
        if mine_id is None
        else {
            "id": mine_id,
            "status": mine_status,
            "draft": json_value(draft),
            "result": json_value(result),
            "submitted_at": submitted_at,
            "review_state": review_state,
        },
    }
    assignment = Assignment.from_db(
        db,
        _LEASE_FIELDS,
        (lease_id, project_id, task_id, user.pk, AssignmentStatus.LEASED, leased_at, expires_at, assigned_by_id,
         created_at),
    )  # fmt: skip
    assignment.task, assignment.user = task, user
    return assignment


@functools.lru_cache(maxsize=64)
def _claim_sql(where: str, order: str) -> str:
    candidate = selectors.Candidates(where, (), order).select("LIMIT 1 FOR UPDATE OF t SKIP LOCKED")
    return _CLAIM_SQL.format(candidate=candidate)


def claim(candidates: selectors.Candidates, *, project: Project, user, now) -> Assignment | None:
    """Lease the first candidate of ``candidates`` (or return the user's live lease); None if none is left."""
    expires = now + timedelta(minutes=project.lease_minutes)
    with hot_cursor() as cursor:
        cursor.execute(
            _claim_sql(candidates.where, candidates.order),
            [project.pk, user.pk, now, *candidates.params, user.pk, now, expires, now, now],
        )
        row = cursor.fetchone()
    return None if row is None else _page_assignment(row, user=user)


def held_lease(*, project: Project, user, now) -> Assignment | None:
    """The user's live lease in the project (the oldest, should there be several), or None."""
    with hot_cursor() as cursor:
        cursor.execute(_HELD_SQL, [project.pk, user.pk, now])
        row = cursor.fetchone()
    return None if row is None else _page_assignment(row, user=user)
