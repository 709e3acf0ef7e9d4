"""The review endpoints load an annotation, its task, article, project and annotator and the
caller's membership with one statement, as the ORM would, and answer 404 to non-members."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from annotator.db import MAX_ID
from projects.annotations.models import Annotation
from projects.annotations.review_api import _annotation_for
from projects.core.exceptions import NotFound
from projects.core.models import Role
from tests import factories

pytestmark = pytest.mark.django_db


def _request(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


@pytest.fixture
def annotation(project, annotator):
    task = factories.TaskFactory(article__project=project, payload={"q": "Why?"}, start_offset=3, end_offset=12)
    return factories.AnnotationFactory(
        task=task, user=annotator, result={"topic": "politics"}, lead_time=12.5, guideline_version=2
    )


def test_loads_everything_the_review_needs_in_one_statement(reviewer, annotation):
    with CaptureQueriesContext(connection) as queries:
        loaded, membership = _annotation_for(_request(reviewer), annotation.pk)
        related = (loaded.task, loaded.task.article, loaded.project, loaded.task.project, loaded.user)
    assert len(queries) == 1
    orm = Annotation.objects.select_related("task__article", "task__project", "project", "user").get(pk=annotation.pk)
    expected_all = (orm, orm.task, orm.task.article, orm.project, orm.task.project, orm.user)
    pairs = zip((loaded, *related), expected_all, strict=True)
    for mine, expected in pairs:
        assert _fields(mine) == _fields(expected)
        assert {k: type(v) for k, v in _fields(mine).items()} == {k: type(v) for k, v in _fields(expected).items()}
    assert loaded.task.text == orm.task.text
    assert membership.role == Role.REVIEWER and membership.user == reviewer


def test_non_members_anonymous_and_unknown_ids_get_404(outsider, reviewer, annotation):
    from django.contrib.auth.models import AnonymousUser

    for user, annotation_id in (
        (outsider, annotation.pk),
        (AnonymousUser(), annotation.pk),
        (reviewer, annotation.pk + 1000),
        (reviewer, MAX_ID + 1),
        (reviewer, 0),
    ):
        with pytest.raises(NotFound):
            _annotation_for(_request(user), annotation_id)
    root = factories.UserFactory(username="root", is_superuser=True)
    assert _annotation_for(_request(root), annotation.pk)[1].role == Role.ADMIN


def test_verdict_answers_the_annotation_as_stored(client_for, reviewer, annotation):
    response = client_for(reviewer).post(
        f"/api/v1/annotations/{annotation.pk}/review/", {"verdict": "accept"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    annotation.refresh_from_db()
    assert body["review_state"] == annotation.review_state == "accepted"
    assert body["reviewed_result"] == annotation.reviewed_result == {"topic": "politics"}
    assert body["username"] == annotation.user.username and body["text"] == annotation.task.text
    assert [r["verdict"] for r in body["reviews"]] == ["accept"]
