"""``task_for_user``: one hand-written statement loads the task, its article and its project as
the ORM would (same values, same types, on both databases), and decides who may see the task."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from annotator.db import MAX_ID
from projects.assignment.api import task_for_user
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.exceptions import NotFound
from projects.core.models import Role
from tests import factories

pytestmark = pytest.mark.django_db


def _request(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


@pytest.fixture
def task(project):
    article = factories.ArticleFactory(
        project=project,
        title="Quarterly <b>report</b>",
        text="Ünïcode text — with 'quotes' and \"doubles\".",
        published_at=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        meta={"lang": "en", "tags": ["a", "b"], "n": 3},
    )
    return factories.TaskFactory(
        article=article,
        payload={"question": "Why?", "nested": {"x": [1, 2.5, None, True]}},
        is_gold=True,
        gold_answer={"topic": "business"},
        is_flagged=True,
        flag_domain="finance",
        flagged_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        uncertainty=0.25,
        priority=-3,
        start_offset=2,
        end_offset=20,
    )


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_loads_task_article_and_project_as_the_orm_does(project, manager, task):
    with CaptureQueriesContext(connection) as queries:
        loaded, membership = task_for_user(_request(manager), task.pk)
        article, loaded_project = loaded.article, loaded.project  # already loaded: no query
    assert len(queries) == 1
    expected = Task.objects.select_related("article", "project").get(pk=task.pk)
    for mine, orm in ((loaded, expected), (article, expected.article), (loaded_project, expected.project)):
        assert _fields(mine) == _fields(orm)
        # Same Python types too (SQLite hands back text and integers for dates and booleans).
        assert {k: type(v) for k, v in _fields(mine).items()} == {k: type(v) for k, v in _fields(orm).items()}
        assert not mine._state.adding and mine._state.db == "default"
    assert loaded.text == expected.text  # the segment of the article's text
    assert loaded_project.label_schema == project.label_schema
    assert membership.role == Role.MANAGER and membership.project is loaded_project


def test_loaded_task_saves_like_an_orm_instance(manager, task):
    loaded, _ = task_for_user(_request(manager), task.pk)
    loaded.priority = 7
    loaded.save(update_fields=["priority"])
    task.refresh_from_db()
    assert task.priority == 7 and task.payload == {"question": "Why?", "nested": {"x": [1, 2.5, None, True]}}


def test_annotators_see_only_tasks_they_held_or_annotated(project, annotator, task):
    with pytest.raises(NotFound):
        task_for_user(_request(annotator), task.pk)
    Assignment.objects.create(task=task, project=project, user=annotator, status=AssignmentStatus.SKIPPED)
    assert task_for_user(_request(annotator), task.pk)[0].pk == task.pk
    other = factories.TaskFactory(article=factories.ArticleFactory(project=project))
    factories.AnnotationFactory(task=other, user=annotator)
    assert task_for_user(_request(annotator), other.pk)[0].pk == other.pk


def test_outsiders_anonymous_and_bad_ids_get_not_found(outsider, reviewer, task):
    from django.contrib.auth.models import AnonymousUser

    for user, task_id in (
        (outsider, task.pk),
        (AnonymousUser(), task.pk),
        (reviewer, task.pk + 1000),
        (reviewer, "abc"),
        (reviewer, None),
        (reviewer, 0),
        (reviewer, -5),
        (reviewer, MAX_ID + 1),
        (reviewer, 10**30),
    ):
        with pytest.raises(NotFound):
            task_for_user(_request(user), task_id)
    assert task_for_user(_request(reviewer), str(task.pk))[0].pk == task.pk


def test_superusers_who_are_not_members_act_as_admins(task):
    root = factories.UserFactory(username="root", is_superuser=True)
    loaded, membership = task_for_user(_request(root), task.pk)
    assert loaded.pk == task.pk and membership.role == Role.ADMIN and membership.pk is None


def test_task_api_with_a_huge_id_is_a_404(client_for, reviewer):
    response = client_for(reviewer).get(f"/api/v1/tasks/{MAX_ID + 1}/")
    assert response.status_code == 404
