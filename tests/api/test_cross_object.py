"""Writes aimed at objects of another user or another project (IDOR): refused, nothing changes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from projects.annotations.models import Annotation
from projects.assignment.services import task_next_for_user
from projects.core.models import ApiToken, AuditEvent, Membership, Role
from projects.core.services import token_create
from tests import factories
from tests.api.test_permissions import assert_unchanged, db_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_projects():
    """Project A (ours) and project B; ``mallory`` is manager in A, ``bob`` belongs to B only."""
    a, b = factories.ProjectFactory(), factories.ProjectFactory()
    mallory = factories.UserFactory(username="mallory")
    factories.MembershipFactory(project=a, user=mallory, role=Role.MANAGER)
    bob = factories.UserFactory(username="bob")
    bob_in_b = factories.MembershipFactory(project=b, user=bob, role=Role.ADMIN)
    factories.MembershipFactory(project=a, user=factories.UserFactory(username="a-admin"), role=Role.ADMIN)
    return a, b, mallory, bob, bob_in_b


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_member_of_another_project_cannot_be_reached_through_ours(two_projects):
    a, b, mallory, bob, bob_in_b = two_projects
    client = as_user(mallory)
    before = db_snapshot()
    url = f"/api/v1/projects/{a.pk}/members/{bob_in_b.pk}/"
    assert client.get(url).status_code == 404
    assert client.patch(url, {"role": "annotator"}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    assert_unchanged(before, db_snapshot(), "member of project B through project A")


def test_audit_event_of_another_project_is_404(two_projects):
    a, b, mallory, bob, _ = two_projects
    event = AuditEvent.objects.create(project=b, actor=bob, action="secret.thing")
    assert as_user(mallory).get(f"/api/v1/projects/{a.pk}/audit/{event.pk}/").status_code == 404


def test_manager_cannot_promote_self_or_touch_the_admin(two_projects):
    a, _, mallory, _, _ = two_projects
    client = as_user(mallory)
    mine = Membership.objects.get(project=a, user=mallory)
    admin = Membership.objects.get(project=a, role=Role.ADMIN)
    before = db_snapshot()
    assert (
        client.patch(f"/api/v1/projects/{a.pk}/members/{mine.pk}/", {"role": "admin"}, format="json").status_code == 403
    )
    assert (
        client.patch(f"/api/v1/projects/{a.pk}/members/{admin.pk}/", {"role": "annotator"}, format="json").status_code
        == 403
    )
    assert client.delete(f"/api/v1/projects/{a.pk}/members/{admin.pk}/").status_code == 403
    assert (
        client.post(
            f"/api/v1/projects/{a.pk}/members/", {"username": "bob", "role": "admin"}, format="json"
        ).status_code
        == 403
    )
    assert_unchanged(before, db_snapshot(), "manager escalating")


def test_tokens_of_another_user_cannot_be_seen_or_revoked(two_projects):
    _, _, mallory, bob, _ = two_projects
    token, _ = token_create(user=bob, name="bob's")
    client = as_user(mallory)
    assert all(t["id"] != token.pk for t in client.get("/api/v1/tokens/").json()["results"])
    for method in ("get", "patch", "put", "delete"):
        response = getattr(client, method)(f"/api/v1/tokens/{token.pk}/", {}, format="json")
        assert response.status_code in (404, 405), (method, response.status_code)
    token.refresh_from_db()
    assert token.revoked_at is None and token.name == "bob's"


def test_web_revoke_of_another_users_token_is_404(client, two_projects):
    _, _, mallory, bob, _ = two_projects
    token, _ = token_create(user=bob)
    client.force_login(mallory)
    assert client.post(f"/profile/tokens/{token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_annotator_cannot_write_on_a_task_held_by_someone_else():
    project = factories.ProjectFactory()
    alice, eve = factories.UserFactory(username="alice"), factories.UserFactory(username="eve")
    for user in (alice, eve):
        factories.MembershipFactory(project=project, user=user, role=Role.ANNOTATOR)
    factories.TaskFactory(article=factories.ArticleFactory(project=project))
    task = task_next_for_user(project=project, user=alice).task
    as_user(alice).put(f"/api/v1/tasks/{task.pk}/draft/", {"result": {"topic": "politics"}}, format="json")
    before = db_snapshot()
    eve_client = as_user(eve)
    assert eve_client.get(f"/api/v1/tasks/{task.pk}/").status_code == 404
    assert eve_client.get(f"/api/v1/tasks/{task.pk}/draft/").status_code == 404
    assert (
        eve_client.put(f"/api/v1/tasks/{task.pk}/draft/", {"result": {"topic": "business"}}, format="json").status_code
        == 404
    )
    assert (
        eve_client.post(
            f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "business"}}, format="json"
        ).status_code
        == 404
    )
    assert eve_client.post(f"/api/v1/tasks/{task.pk}/skip/").status_code == 404
    assert_unchanged(before, db_snapshot(), "eve on alice's task")
    assert Annotation.objects.get(task=task, user=alice).draft == {"topic": "politics"}


def test_outsider_cannot_touch_tasks_of_another_project(two_projects):
    a, _, _, bob, _ = two_projects
    task = factories.TaskFactory(article=factories.ArticleFactory(project=a))
    client = as_user(bob)
    before = db_snapshot()
    assert client.post(f"/api/v1/projects/{a.pk}/next-task/").status_code == 404
    assert client.put(f"/api/v1/tasks/{task.pk}/draft/", {"result": {}}, format="json").status_code == 404
    assert client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {}}, format="json").status_code == 404
    assert_unchanged(before, db_snapshot(), "outsider on a task")


def test_submitting_does_not_let_a_user_write_someone_elses_annotation():
    """The annotation written is always the requester's own; ids in the body are ignored."""
    project = factories.ProjectFactory(overlap=2)
    alice, eve = factories.UserFactory(username="alice"), factories.UserFactory(username="eve")
    for user in (alice, eve):
        factories.MembershipFactory(project=project, user=user, role=Role.ANNOTATOR)
    factories.TaskFactory(article=factories.ArticleFactory(project=project))
    task = task_next_for_user(project=project, user=alice).task
    as_user(alice).post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "politics"}}, format="json")
    alices = Annotation.objects.get(task=task, user=alice)
    assert task_next_for_user(project=project, user=eve).task_id == task.pk
    response = as_user(eve).post(
        f"/api/v1/tasks/{task.pk}/annotations/",
        {"result": {"topic": "business"}, "id": alices.pk, "user": alice.pk},
        format="json",
    )
    assert response.status_code == 201 and response.json()["user"] == eve.pk
    alices.refresh_from_db()
    assert alices.result == {"topic": "politics"}
