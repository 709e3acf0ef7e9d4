"""Task manager and progress pages: roles, filters, bulk form, escaping."""

from __future__ import annotations

import pytest
from django.test import Client

from projects.assignment.models import Assignment, Task
from tests import factories

pytestmark = pytest.mark.django_db


def web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_manager_role(project, annotator, outsider, manager):
    for path in (f"/projects/{project.pk}/tasks/", f"/projects/{project.pk}/progress/"):
        assert web(annotator).get(path).status_code == 403
        assert web(outsider).get(path).status_code == 404
        assert web(manager).get(path).status_code == 200
    assert web(annotator).post(f"/projects/{project.pk}/tasks/bulk/", {"action": "mark_gold"}).status_code == 403


def test_task_page_lists_filters_and_escapes(project, manager):
    evil = factories.TaskFactory(article__project=project, article__title="<script>alert(1)</script>", priority=4)
    factories.TaskFactory(article__project=project, article__title="Calm")
    page = web(manager).get(f"/projects/{project.pk}/tasks/", {"ordering": "-priority", "is_flagged": "false"})
    html = page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert html.index(f'value="{evil.pk}"') < html.index("Calm")
    bad = web(manager).get(f"/projects/{project.pk}/tasks/", {"ordering": "article__text"})
    assert bad.status_code == 200 and "Cannot order by" in bad.content.decode()


def test_bulk_form_sets_priority_and_assigns(project, manager, annotator):
    a, b = (factories.TaskFactory(article__project=project) for _ in range(2))
    client = web(manager)
    response = client.post(
        f"/projects/{project.pk}/tasks/bulk/",
        {"action": "set_priority", "priority": "5", "scope": "selected", "task_ids": [a.pk], "back": "status=open"},
    )
    assert response.status_code == 302 and response["Location"].endswith("?status=open")
    assert Task.objects.get(pk=a.pk).priority == 5 and Task.objects.get(pk=b.pk).priority == 0
    client.post(
        f"/projects/{project.pk}/tasks/bulk/",
        {"action": "assign", "usernames": annotator.username, "scope": "filter", "filter_query": f"id_from={b.pk}"},
    )
    assert list(Assignment.objects.values_list("task_id", "user__username")) == [(b.pk, annotator.username)]
    client.post(f"/projects/{project.pk}/tasks/bulk/", {"action": "delete", "scope": "selected", "task_ids": [a.pk]})
    assert Task.objects.filter(pk=a.pk).exists()  # no confirm, nothing deleted


def test_progress_page_shows_counts(project, manager, annotator):
    task = factories.TaskFactory(article__project=project)
    factories.AnnotationFactory(task=task, project=project, user=annotator, lead_time=12)
    html = web(manager).get(f"/projects/{project.pk}/progress/").content.decode()
    assert annotator.username in html and "12.0" in html
