"""Queries per next-task and per submit, pinned so the hot paths cannot regress.

The counts do not depend on load or on the number of tasks. They include the savepoints the
test transaction turns ``atomic`` blocks into, the token lookup, and the domain-event handlers
run after commit (webhooks, retraining, quality). PostgreSQL claims in one statement; SQLite
picks, claims conditionally and leases in separate ones, and reads the page's extras apart.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from projects.annotations.models import Annotation
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.services import token_create
from projects.quality.models import QualitySettings
from tests import factories

pytestmark = pytest.mark.django_db

RESULT = {
    "result": {
        "topic": "business",
        "entities": [
            {"start": 0, "end": 5, "label": "PERSON"},
            {"start": 6, "end": 11, "label": "ORG"},
            {"start": 12, "end": 17, "label": "LOC"},
        ],
    }
}
TEXT = "Alice Acme_ Paris and more words after the three spans."

# Token lookup, savepoint, queue state (with the membership, role and project), claim, release
# (PostgreSQL). Exact: a next-task call that grows a statement fails here.
NEXT_TASK_PG = 5
# SQLite: candidates, conditional claim, the task, lease upsert and counter are five statements,
# and the predictions and the user's draft are read after the claim.
NEXT_TASK_SQLITE = 11
# Token, savepoint, the task lock and the read of everything the rules need (access, schema,
# text, assignment, annotation: two statements in one round trip, a pipeline of prepared
# statements), one statement writing the annotation, the assignment and the counters, release.
# SQLite (transactions take the write lock at once) reads in one statement and writes in three.
SUBMIT_PG = 6
SUBMIT_SQLITE = 7
# After commit, the domain-event handlers: the quality handler's one read (webhooks and
# retraining come from the memo).
SUBMIT_AFTER_COMMIT = 1


@pytest.fixture
def token_client(project, annotator):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=annotator, name='q')[1]}")
    return client


def _tasks(project, n: int) -> list[Task]:
    return [factories.TaskFactory(article__project=project, article__text=TEXT) for _ in range(n)]


def _next(client, project):
    response = client.post(f"/api/v1/projects/{project.pk}/next-task/")
    assert response.status_code == 200, response.content
    return response.json()


def _submit(client, task_id: int, status: int = 201):
    response = client.post(f"/api/v1/tasks/{task_id}/annotations/", RESULT, format="json")
    assert response.status_code == status, response.content
    return response.json()


def test_next_task_and_submit_query_counts(
    project,
    token_client,
    annotator,
    django_assert_num_queries,
    django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
):
    _tasks(project, 5)
    with django_capture_on_commit_callbacks(execute=True):  # warm up: quality row, memos
        _submit(token_client, _next(token_client, project)["id"])
    with django_assert_num_queries(NEXT_TASK_PG if settings.IS_POSTGRES else NEXT_TASK_SQLITE):
        task = _next(token_client, project)
    assert task["text"] == TEXT and task["lease_expires_at"] and task["draft"] is None
    with django_capture_on_commit_callbacks() as callbacks:
        with django_assert_max_num_queries(SUBMIT_PG if settings.IS_POSTGRES else SUBMIT_SQLITE):
            stored = _submit(token_client, task["id"])
    with django_assert_max_num_queries(SUBMIT_AFTER_COMMIT):
        for callback in callbacks:
            callback()
    assert stored["result"]["entities"][2] == {"start": 12, "end": 17, "label": "LOC", "text": "Paris"}
    assert Assignment.objects.get(task_id=task["id"], user=annotator).status == AssignmentStatus.SUBMITTED
    row = Task.objects.get(pk=task["id"])
    assert (row.submitted_count, row.leased_count, row.is_complete) == (1, 0, True)


def test_query_counts_do_not_grow_with_the_queue(project, token_client, django_capture_on_commit_callbacks):
    _tasks(project, 3)
    counts = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            with django_capture_on_commit_callbacks(execute=True):
                _submit(token_client, _next(token_client, project)["id"])
        counts.append(len(queries))
    assert counts[1] == counts[2]  # the first pays once for the quality row and the memos


def test_submit_does_not_write_the_quality_row_while_it_is_already_stale(
    project, token_client, django_capture_on_commit_callbacks
):
    _tasks(project, 2)
    with django_capture_on_commit_callbacks(execute=True):
        _submit(token_client, _next(token_client, project)["id"])
    marked = QualitySettings.objects.get(project=project).dirty_at
    assert marked is not None
    with CaptureQueriesContext(connection) as queries:
        with django_capture_on_commit_callbacks(execute=True):
            _submit(token_client, _next(token_client, project)["id"])
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "quality" in q["sql"]]
    assert writes == []
    assert QualitySettings.objects.get(project=project).dirty_at == marked


def test_quality_is_marked_again_once_a_recompute_started_after_the_mark(
    project, token_client, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    _tasks(project, 2)
    with django_capture_on_commit_callbacks(execute=True):
        _submit(token_client, _next(token_client, project)["id"])
    started = timezone.now()
    QualitySettings.objects.filter(project=project).update(running_since=started)  # a recompute is running
    with django_capture_on_commit_callbacks(execute=True):
        _submit(token_client, _next(token_client, project)["id"])
    assert QualitySettings.objects.get(project=project).dirty_at > started  # that run cannot clear it


def test_resubmission_updates_the_same_annotation_and_keeps_the_counters(
    project, token_client, annotator, django_capture_on_commit_callbacks
):
    _tasks(project, 1)
    task_id = _next(token_client, project)["id"]
    with django_capture_on_commit_callbacks(execute=True):
        first = _submit(token_client, task_id)
        again = _submit(token_client, task_id, status=200)
    assert first["id"] == again["id"] and Annotation.objects.filter(task_id=task_id).count() == 1
    row = Task.objects.get(pk=task_id)
    assert (row.submitted_count, row.leased_count) == (1, 0)


def test_a_webhook_added_after_submissions_still_receives_events(
    project, manager, token_client, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from projects.exports import webhooks
    from projects.exports.models import WebhookDelivery
    from projects.exports.webhooks import webhook_create

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    sent = []
    monkeypatch.setattr(webhooks.dispatch, "enqueue", lambda job, *args, **kwargs: sent.append(args[0]))
    _tasks(project, 2)
    with django_capture_on_commit_callbacks(execute=True):
        _submit(token_client, _next(token_client, project)["id"])  # memoizes "no webhooks"
    webhook_create(project=project, actor=manager, url="http://127.0.0.1:9/hook", events=["annotation.submitted"])
    with django_capture_on_commit_callbacks(execute=True):
        _submit(token_client, _next(token_client, project)["id"])
    delivery = WebhookDelivery.objects.get(event="annotation.submitted")
    assert sent == [delivery.pk]
