"""``annotator.db.hot_cursor``: the token lookup and the queue's statements are prepared once per
connection on PostgreSQL, still logged and counted, and not prepared when turned off."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from annotator.db import hot_cursor
from projects.core.services import token_create
from tests import factories

pytestmark = pytest.mark.django_db


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _forget_prepared() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # psycopg sees it and forgets its own list too


def _four_calls(project, annotator) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=annotator)[1]}")
    for _ in range(4):  # the first leases, the others return the held lease
        assert client.post(f"/api/v1/projects/{project.pk}/next-task/").status_code == 200


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="prepared statements are a PostgreSQL matter")
def test_token_and_queue_statements_are_prepared_on_a_repeat(project, annotator):
    factories.TaskFactory(article__project=project)
    _forget_prepared()
    _four_calls(project, annotator)
    prepared = _prepared()
    assert any("projects_apitoken" in s for s in prepared)  # the token lookup
    assert any("FOR UPDATE OF m" in s for s in prepared)  # the queue state
    assert any(s.lstrip().startswith("WITH l AS") for s in prepared)  # the held lease (asked three times)


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="prepared statements are a PostgreSQL matter")
def test_nothing_is_prepared_when_turned_off(project, annotator, settings):
    settings.DB_PREPARED_STATEMENTS = False
    factories.TaskFactory(article__project=project)
    _forget_prepared()
    _four_calls(project, annotator)
    assert _prepared() == []


def test_statements_are_logged_with_their_values(project):
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            with hot_cursor() as cursor:
                sql = "SELECT id FROM projects_project WHERE id = %s AND name = %s"
                cursor.execute(sql, [project.pk, project.name])
                assert cursor.fetchone() == (project.pk,)
    assert len(queries) == 3
    assert all(str(project.pk) in q["sql"] and project.name in q["sql"] for q in queries.captured_queries)


def test_errors_are_translated(db):
    with pytest.raises(DatabaseError), transaction.atomic():
        with hot_cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM projects_project")
