"""Imported articles and the task manager's full-text search: the document is computed after the
import (PostgreSQL), and searches find articles before and after that catch-up."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from projects.assignment import search

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(not settings.IS_POSTGRES, reason="the stored search document is PostgreSQL only")

ROWS = [
    {"id": "n1", "title": "Central bank raises rates", "text": "Markets fell."},
    {"id": "n2", "title": "Football", "text": "A late goal won the derby for the visitors."},
]


def jsonl(rows) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def found(client, project, query: str) -> list[str]:
    response = client.get(f"/api/v1/projects/{project.pk}/tasks/", {"search": query})
    assert response.status_code == 200, response.content
    return sorted(row["external_id"] for row in response.json()["results"])


@pytest.fixture
def mgr(client_for, manager):
    return client_for(manager)


def test_search_finds_imported_articles_once_indexing_ran(upload, mgr, project):
    assert upload("news.jsonl", jsonl(ROWS)).json()["status"] == "succeeded"
    if settings.IS_POSTGRES:  # the import scheduled the indexing job, which ran (Celery eager)
        assert search.pending_ids(project.pk) == []
    assert found(mgr, project, "bank") == ["n1"]
    assert found(mgr, project, "goal") == ["n2"]
    assert found(mgr, project, "zeppelin") == []


@postgres_only
def test_search_does_not_wait_for_the_index(upload, mgr, project, monkeypatch):
    monkeypatch.setattr("projects.imports.services._schedule_search_index", lambda project_id: None)
    upload("news.jsonl", jsonl(ROWS))
    assert search.pending_ids(project.pk) == ["n1", "n2"]
    assert found(mgr, project, "bank") == ["n1"]  # computed on the fly for rows not indexed yet
    assert search.index_pending(project_id=project.pk) == 2
    assert search.index_pending(project_id=project.pk) == 0
    assert found(mgr, project, "bank") == ["n1"]  # now through the stored document
    changed = [{**ROWS[0], "title": "Zeppelin lands", "text": "No bank here."}, ROWS[1]]
    body = upload("news.jsonl", jsonl(changed)).json()
    assert (body["rows_updated"], body["rows_unchanged"]) == (1, 1)
    # The changed article's stale document was dropped with the change; the unchanged one kept its own.
    assert search.pending_ids(project.pk) == ["n1"]
    assert found(mgr, project, "zeppelin") == ["n1"]
    assert found(mgr, project, "rates") == []
