import pytest

from projects.core.models import Membership, Role
from tests import factories

pytestmark = pytest.mark.django_db


def url(project, member=None):
    base = f"/api/v1/projects/{project.pk}/members/"
    return f"{base}{member.pk}/" if member else base


def test_manager_adds_annotator_by_username(client_for, project, manager):
    newbie = factories.UserFactory(username="newbie")
    response = client_for(manager).post(url(project), {"username": "newbie", "role": "annotator"}, format="json")
    assert response.status_code == 201
    assert Membership.objects.get(project=project, user=newbie).role == Role.ANNOTATOR


def test_manager_cannot_grant_admin(client_for, project, manager):
    factories.UserFactory(username="newbie")
    response = client_for(manager).post(url(project), {"username": "newbie", "role": "admin"}, format="json")
    assert response.status_code == 403
    assert not Membership.objects.filter(project=project, user__username="newbie").exists()


def test_adding_twice_is_a_conflict(client_for, project, manager, annotator):
    response = client_for(manager).post(url(project), {"username": annotator.username}, format="json")
    assert response.status_code == 409


def test_unknown_user_is_a_clear_404(client_for, project, manager):
    response = client_for(manager).post(url(project), {"username": "ghost"}, format="json")
    assert response.status_code == 404
    assert "ghost" in response.json()["error"]["message"]


def test_last_admin_cannot_be_removed(client_for, project, admin_user):
    membership = Membership.objects.get(project=project, user=admin_user)
    assert client_for(admin_user).delete(url(project, membership)).status_code == 409
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_manager_sets_skills(client_for, project, manager, annotator):
    membership = Membership.objects.get(project=project, user=annotator)
    response = client_for(manager).patch(url(project, membership), {"skills": {"medicine": "expert"}}, format="json")
    assert response.status_code == 200
    assert response.json()["skills"] == {"medicine": "expert"}
    bad = client_for(manager).patch(url(project, membership), {"skills": {"medicine": "guru"}}, format="json")
    assert bad.status_code == 400


def test_annotator_cannot_list_or_change_members(client_for, project, annotator, manager):
    client = client_for(annotator)
    assert client.get(url(project)).status_code == 403
    membership = Membership.objects.get(project=project, user=annotator)
    assert client.patch(url(project, membership), {"role": "admin"}, format="json").status_code == 403
    assert Membership.objects.get(pk=membership.pk).role == Role.ANNOTATOR


def test_outsider_gets_404(client_for, project, outsider, annotator):
    membership = Membership.objects.get(project=project, user=annotator)
    client = client_for(outsider)
    assert client.get(url(project)).status_code == 404
    assert client.delete(url(project, membership)).status_code == 404
    assert Membership.objects.filter(pk=membership.pk).exists()
