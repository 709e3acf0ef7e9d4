"""The per-request statements must not read an annotator's whole history.

An annotator who has done thousands of tasks asks for the next one and submits it as cheaply as
on their first day: the submit's access check and next-task's queue-state row each read a
bounded number of assignment rows, whatever the history. Checked on the plan PostgreSQL runs for
a prepared statement after its first executions (the generic plan, forced here), with the
table's statistics taken before that history (as after a project's first busy day), the case where the
planner once chose to hash every assignment of the user or to filter them one by one.
"""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from projects.annotations import submission
from projects.annotations.models import Annotation, AnnotationStatus
from projects.assignment import selectors
from projects.assignment.models import Assignment, AssignmentStatus, Task
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="PostgreSQL plans (SQLite has no generic plans)"),
]

HISTORY = 2000


@pytest.fixture
def veteran(project):
    """A member with HISTORY submitted assignments (and their annotations) in the project, and
    one task leased now,
    added after the tables' statistics were taken (as when a project's first big day of work
    lands before the next autovacuum analyzes the table)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE assignment_assignment, assignment_task, annotations_annotation")
    user = factories.UserFactory(username="veteran")
    factories.MembershipFactory(project=project, user=user)
    article = factories.ArticleFactory(project=project)
    tasks = Task.objects.bulk_create(
        [Task(project=project, article=article, segment_index=i) for i in range(HISTORY + 1)]
    )
    now = timezone.now()
    Assignment.objects.bulk_create(
        [Assignment(project=project, task=t, user=user, status=AssignmentStatus.SUBMITTED) for t in tasks[:-1]]
        + [Assignment(project=project, task=tasks[-1], user=user, status=AssignmentStatus.LEASED, expires_at=now)]
    )
    Annotation.objects.bulk_create(
        [
            Annotation(project=project, task=t, user=user, status=AnnotationStatus.SUBMITTED, submitted_at=now)
            for t in tasks[:-1]
        ]
    )
    return user, tasks[-1]


def _numbered(sql: str, names: list[str]) -> str:
    """``%(name)s`` and ``%s`` placeholders as ``$n`` (named ones numbered in first-seen order)."""
    counter = iter(range(1, 1000))

    def named(match):
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    if "%(" in sql:
        return re.sub(r"%\((\w+)\)s", named, sql)
    return re.sub(r"%s", lambda _: f"${next(counter)}", sql)


def history_rows_read(sql: str, params) -> int:
    """Rows of the assignment and annotation tables the statement's generic plan reads (kept or
    filtered out)."""
    names: list[str] = []
    text = _numbered(sql, names)
    values = [params[n] for n in names] if names else list(params)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE history_probe AS {text}")
        try:
            placeholders = ", ".join(["%s"] * len(values))
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE history_probe({placeholders})", values)
            plan = cursor.fetchone()[0]
        finally:
            cursor.execute("DEALLOCATE history_probe")
    if isinstance(plan, str):
        plan = json.loads(plan)
    total = 0
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        stack.extend(node.get("Plans", []))
        if node.get("Relation Name") in ("assignment_assignment", "annotations_annotation"):
            loops = node.get("Actual Loops", 1)
            total += (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
    return total


def test_submit_access_check_probes_not_scans(veteran):
    user, task = veteran
    params = {"user": user.pk, "task": task.pk, "superuser": False}
    read = history_rows_read(submission._PG_LOCK[True], params)
    assert read <= 5, f"the access check read {read} rows of the user's {HISTORY} tasks of history"


def test_queue_state_probes_not_scans(veteran, project):
    user, _ = veteran
    project.gold_ratio = 0
    project.save(update_fields=["gold_ratio"])
    read = history_rows_read(selectors._STATE_SQL_LOCKING, [timezone.now(), project.pk, user.pk])
    assert read <= 5, f"the queue state read {read} rows of the user's {HISTORY} tasks of history"


def test_my_submissions_first_page_reads_a_page_not_the_history(veteran, project):
    from types import SimpleNamespace

    from projects.annotations.api import MyAnnotationsView

    user, _ = veteran
    view = MyAnnotationsView()
    view.request = SimpleNamespace(project=project, user=user)
    sql, params = view.get_queryset()[:50].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    read, stack = 0, [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        stack.extend(node.get("Plans", []))
        if node.get("Relation Name") == "annotations_annotation":
            read += (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get("Actual Loops", 1)
    assert read <= 60, f"the first page read {read} of the user's {HISTORY} annotations"
