"""``POST /api/v1/projects/{id}/next-task/`` as scripts use it (token auth): the body contract,
refusals that take effect on the very next call, and a double click leasing one task."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient, APIRequestFactory

from projects.assignment.api import TaskWorkSerializer
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.models import Membership, Role
from projects.core.services import token_create, token_revoke
from tests import factories

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='script')[1]}")
    return client


def next_task(client, project):
    return client.post(f"/api/v1/projects/{project.pk}/next-task/")


def serializer_body(task_id: int, user) -> dict:
    """What the declared response serializer (the OpenAPI schema's) makes of the task."""
    task = Task.objects.select_related("article").get(pk=task_id)
    assignment = Assignment.objects.filter(task=task, user=user, status=AssignmentStatus.LEASED).first()
    request = APIRequestFactory().get("/")
    request.user = user
    data = TaskWorkSerializer(task, context={"request": request, "assignment": assignment}).data
    return json.loads(JSONRenderer().render(data))


# --- the body --------------------------------------------------------------------------------


@pytest.fixture
def rich_task(project, annotator):
    """A paragraph task with a payload, two predictions, and the annotator's draft from an
    earlier lease that expired."""
    article = factories.ArticleFactory(project=project, text="First paragraph.\n\nSecond one, ünïcödé 🙂.")
    task = factories.TaskFactory(
        article=article,
        segment_index=1,
        start_offset=18,
        end_offset=len(article.text),
        payload={"response": "text", "n": [1, 2]},
        required_skill="medicine",
        priority=4,
    )
    factories.PredictionFactory(task=task, model_version="m-1", score=None, result={"topic": "politics"})
    factories.PredictionFactory(task=task, model_version="m-2", score=0.25)
    factories.AnnotationFactory(task=task, user=annotator, status="draft", draft={"topic": "business"}, result={})
    Assignment.objects.create(project=project, task=task, user=annotator, status=AssignmentStatus.EXPIRED)
    return task


def test_body_is_the_declared_serializers_output_when_leasing_and_when_held(project, annotator, rich_task):
    client = token_client(annotator)
    leased = next_task(client, project)
    assert leased.status_code == 200, leased.content
    body = leased.json()
    assert body == serializer_body(rich_task.pk, annotator)
    assert body["text"] == "Second one, ünïcödé 🙂." and body["draft"] == {"topic": "business"}
    assert [p["model_version"] for p in body["predictions"]] == ["m-2", "m-1"]  # newest first
    assert body["lease_expires_at"] and body["my_annotation"] is None
    held = next_task(client, project).json()
    assert held == body
    assert client.get(f"/api/v1/tasks/{rich_task.pk}/").json() == body


def test_body_shows_a_submitted_annotation_of_an_assigned_task(project, annotator, manager):
    task = factories.TaskFactory(article__project=project)
    submitted_at = timezone.now() - timedelta(hours=1)
    factories.AnnotationFactory(task=task, user=annotator, submitted_at=submitted_at, review_state="rejected")
    Assignment.objects.create(project=project, task=task, user=annotator, status=AssignmentStatus.ASSIGNED)
    body = next_task(token_client(annotator), project).json()
    assert body == serializer_body(task.pk, annotator)
    assert body["my_annotation"]["review_state"] == "rejected" and body["my_annotation"]["submitted_at"]


# --- refusals take effect on the very next call -----------------------------------------------


@pytest.fixture
def working(project, annotator):
    for _ in range(3):
        factories.TaskFactory(article__project=project)
    token, key = token_create(user=annotator, name="script")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert next_task(client, project).status_code == 200
    return client, token


def test_revoked_token_is_refused_on_the_next_call(project, annotator, working):
    client, token = working
    token_revoke(token=token, actor=annotator)
    response = next_task(client, project)
    assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_failed"


def test_expired_token_is_refused_on_the_next_call(project, working):
    client, token = working
    type(token).objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = next_task(client, project)
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]


def test_deactivated_user_is_refused_on_the_next_call(project, annotator, working):
    client, _ = working
    type(annotator).objects.filter(pk=annotator.pk).update(is_active=False)
    assert next_task(client, project).status_code == 401


def test_removed_member_gets_404_on_the_next_call_and_keeps_nothing_new(project, annotator, working):
    client, _ = working
    Membership.objects.filter(project=project, user=annotator).delete()
    response = next_task(client, project)
    assert response.status_code == 404 and response.json()["error"] == {
        "code": "not_found",
        "message": "Project not found.",
        "fields": {},
    }
    assert Assignment.objects.filter(user=annotator).count() == 1  # the lease from before, no new one


def test_paused_member_gets_no_task_on_the_next_call(project, annotator, working):
    client, _ = working
    Assignment.objects.filter(user=annotator).update(status=AssignmentStatus.SUBMITTED)
    Membership.objects.filter(project=project, user=annotator).update(queue_paused=True)
    response = next_task(client, project)
    assert response.status_code == 404 and response.json()["error"]["code"] == "no_task"


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.MANAGER, Role.ADMIN])
def test_a_role_change_takes_effect_on_the_next_call(project, annotator, working, role):
    client, _ = working
    Membership.objects.filter(project=project, user=annotator).update(role=role)
    assert next_task(client, project).status_code == 200  # every role may annotate


def test_read_scope_token_cannot_lease(project, annotator):
    factories.TaskFactory(article__project=project)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=annotator, scope='read')[1]}")
    assert next_task(client, project).status_code == 403
    assert not Assignment.objects.exists()


def test_superuser_who_is_not_a_member_may_lease_and_unknown_projects_are_404(project):
    boss = factories.UserFactory(username="boss", is_superuser=True, is_staff=True)
    task = factories.TaskFactory(article__project=project)
    client = token_client(boss)
    assert next_task(client, project).json()["id"] == task.pk
    response = client.post("/api/v1/projects/999999/next-task/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- a double click -------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (real concurrent writers)")
def test_concurrent_calls_of_one_user_lease_one_task(transactional_db):
    project = factories.ProjectFactory(overlap=1)
    user = factories.UserFactory(username="clicker")
    factories.MembershipFactory(project=project, user=user)
    for _ in range(12):
        factories.TaskFactory(article__project=project)
    key = token_create(user=user)[1]

    def call(barrier: threading.Barrier, got: list) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        try:
            barrier.wait()
            response = next_task(client, project)
            got.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    for _ in range(5):
        barrier, got = threading.Barrier(4), []
        threads = [threading.Thread(target=call, args=(barrier, got)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len({task_id for _, task_id in got}) == 1 and {status for status, _ in got} == {200}, got
        leases = Assignment.objects.filter(user=user, status=AssignmentStatus.LEASED)
        assert leases.count() == 1
        Task.objects.filter(pk=leases.get().task_id).update(leased_count=0, submitted_count=1, is_complete=True)
        leases.update(status=AssignmentStatus.SUBMITTED)
