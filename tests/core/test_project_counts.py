"""A project's counts (home page, project page, project API): exact for small projects, a shared
cached count for large ones, a fixed number of statements however many projects are listed."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from projects.annotations.models import AnnotationStatus
from projects.assignment.models import Task
from projects.core import selectors
from projects.core.models import Role
from tests import factories

pytestmark = pytest.mark.django_db


def counts(body: dict) -> tuple[int, int, int, int]:
    return tuple(body[name] for name in selectors.COUNT_FIELDS)


def test_each_listed_project_gets_its_own_counts_in_a_fixed_number_of_statements(client_for):
    user = factories.UserFactory(username="many")
    projects = []
    for n in range(4):
        project = factories.ProjectFactory(name=f"p{n}")
        factories.MembershipFactory(project=project, user=user, role=Role.ANNOTATOR)
        tasks = factories.TaskFactory.create_batch(n + 1, article__project=project)
        Task.objects.filter(pk=tasks[0].pk).update(is_complete=True)
        factories.AnnotationFactory(task=tasks[0], user=user, status=AnnotationStatus.SUBMITTED)
        projects.append(project)
    client = client_for(user)
    with CaptureQueriesContext(connection) as few:
        body = client.get("/api/v1/projects/").json()
    rows = {row["id"]: counts(row) for row in body["results"]}
    assert rows == {p.pk: (n + 1, n + 1, 1, 1) for n, p in enumerate(projects)}
    factories.ProjectFactory.create_batch(6)  # not the user's: never counted
    for n in range(4, 10):
        project = factories.ProjectFactory(name=f"p{n}")
        factories.MembershipFactory(project=project, user=user, role=Role.ANNOTATOR)
    with CaptureQueriesContext(connection) as more:
        body = client.get("/api/v1/projects/").json()
    assert len(body["results"]) == 10
    assert len(more) == len(few)


def test_large_projects_share_a_cached_count_small_ones_are_exact(client_for, project, annotator, monkeypatch):
    monkeypatch.setattr(selectors, "COUNTS_EXACT_BELOW", 3)
    small = factories.ProjectFactory(name="small")
    factories.MembershipFactory(project=small, user=annotator, role=Role.ANNOTATOR)
    factories.TaskFactory.create_batch(3, article__project=project)
    factories.TaskFactory.create_batch(1, article__project=small)
    client = client_for(annotator)
    assert counts(client.get(f"/api/v1/projects/{project.pk}/").json()) == (3, 3, 0, 0)
    assert counts(client.get(f"/api/v1/projects/{small.pk}/").json()) == (1, 1, 0, 0)

    factories.TaskFactory(article__project=project)
    factories.TaskFactory(article__project=small)
    # The large project's figures are the shared count until it expires; the small one's are live.
    listed = {row["id"]: counts(row) for row in client.get("/api/v1/projects/").json()["results"]}
    assert listed == {project.pk: (3, 3, 0, 0), small.pk: (2, 2, 0, 0)}
    cache.delete(selectors._counts_key(project.pk))  # as when COUNTS_CACHE_SECONDS have passed
    assert counts(client.get(f"/api/v1/projects/{project.pk}/").json()) == (4, 4, 0, 0)


def test_pages_show_the_counts(web_client, project, annotator):
    factories.TaskFactory.create_batch(2, article__project=project)
    page = web_client(annotator).get(f"/projects/{project.pk}/")
    assert (page.context["project"].task_count, page.context["project"].article_count) == (2, 2)
    home = web_client(annotator).get("/")
    assert [row[0].task_count for row in home.context["rows"]] == [2]


def test_counts_while_the_cache_is_down(client_for, project, annotator, monkeypatch, cache_down):
    monkeypatch.setattr(selectors, "cache", cache_down)
    monkeypatch.setattr(selectors, "COUNTS_EXACT_BELOW", 1)
    factories.TaskFactory.create_batch(2, article__project=project)
    assert counts(client_for(annotator).get(f"/api/v1/projects/{project.pk}/").json()) == (2, 2, 0, 0)


@pytest.fixture
def web_client():
    from django.test import Client

    def login(user):
        client = Client()
        client.force_login(user)
        return client

    return login
