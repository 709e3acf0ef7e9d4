"""A double click: the same user submits the same task twice at once (PostgreSQL, real threads).

The second submit waits for the first one's task lock; it must then read the assignment and the
annotation as the first one left them (a statement that waited for a row lock sees every other
row as it was when it began). Each pair gives one 201 and one 200, never a 500, and the task
counts one submission and no lease.
"""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from projects.annotations.models import Annotation
from projects.assignment.models import Assignment, AssignmentStatus, Task
from tests import factories

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (concurrent writers)"),
]

PAIRS = 15


def clicker_project():
    """A project of PAIRS tasks, its annotator "clicker", and an API client signed in as them."""
    project = factories.ProjectFactory()
    user = factories.UserFactory(username="clicker")
    factories.MembershipFactory(project=project, user=user)
    tasks = [factories.TaskFactory(article__project=project) for _ in range(PAIRS)]
    client = APIClient()
    client.force_authenticate(user)
    return project, user, tasks, client


def assert_one_submission_each(project) -> None:
    """Every task of the project counted one submission, no lease, and is complete (overlap 1)."""
    for task in Task.objects.filter(project=project):
        assert (task.submitted_count, task.leased_count, task.is_complete) == (1, 0, True)


def submit(user, task_id: int, barrier: threading.Barrier, answers: list[int]) -> None:
    client = APIClient()
    client.force_authenticate(user)
    try:
        barrier.wait()
        body = {"result": {"topic": "business"}, "lead_time": 1}
        answers.append(client.post(f"/api/v1/tasks/{task_id}/annotations/", body, format="json").status_code)
    finally:
        connection.close()


def test_the_same_submit_twice_at_once_stores_one_annotation(transactional_db):
    project, user, tasks, client = clicker_project()
    statuses = []
    for task in tasks:
        assert client.post(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == task.pk
        barrier = threading.Barrier(2)
        answers: list[int] = []
        threads = [threading.Thread(target=submit, args=(user, task.pk, barrier, answers)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses.append(sorted(answers))
    assert statuses == [[200, 201]] * PAIRS
    assert_one_submission_each(project)
    assert Annotation.objects.filter(project=project).count() == PAIRS
    assert set(Annotation.objects.values_list("lead_time", flat=True)) == {2.0}
    assert set(Assignment.objects.filter(project=project).values_list("status", flat=True)) == {
        AssignmentStatus.SUBMITTED
    }


def clicker(user, task_ids: list[int], start, done, answers: list, prepared: list) -> None:
    """One of the two clicks, on the same connection for every pair (its statements get prepared)."""
    client = APIClient()
    client.force_authenticate(user)
    try:
        for task_id in task_ids:
            start.wait()
            body = {"result": {"topic": "business"}, "lead_time": 1}
            answers.append(client.post(f"/api/v1/tasks/{task_id}/annotations/", body, format="json").status_code)
            done.wait()
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            prepared.append([row[0] for row in cursor.fetchall()])
    except BaseException:
        start.abort()
        done.abort()
        raise
    finally:
        connection.close()


def test_double_clicks_on_kept_connections_run_the_prepared_statements(transactional_db):
    """The same race, each click's thread keeping its connection for all the pairs: from the third
    pair on, the lock, the read and the write run as prepared statements, with the same outcome."""
    project, user, tasks, client = clicker_project()
    start, done = threading.Barrier(3, timeout=30), threading.Barrier(3, timeout=30)
    answers: list[int] = []
    prepared: list[list[str]] = []
    threads = [
        threading.Thread(target=clicker, args=(user, [t.pk for t in tasks], start, done, answers, prepared))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    try:
        for task in tasks:
            assert client.post(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == task.pk
            start.wait()
            done.wait()
    finally:
        for thread in threads:
            thread.join()
    assert [sorted(answers[i : i + 2]) for i in range(0, 2 * PAIRS, 2)] == [[200, 201]] * PAIRS
    for statements in prepared:
        assert any(s.startswith("SELECT t.id FROM assignment_task t") for s in statements)  # the lock
        assert any(s.startswith("WITH annotation AS (INSERT") for s in statements)  # the write
    assert len(prepared) == 2
    assert_one_submission_each(project)
    assert set(Annotation.objects.values_list("lead_time", flat=True)) == {2.0}
