"""``project_and_membership``: the project and the user's membership in one statement, built as
the ORM builds them, behind every project-scoped API request and page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotator.db import MAX_ID
from projects.core.models import Membership, Project, Role
from projects.core.permissions import project_and_membership
from tests import factories

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_member_gets_the_project_and_membership_as_the_orm_loads_them(project, manager):
    Membership.objects.filter(project=project, user=manager).update(queue_paused=True)
    with CaptureQueriesContext(connection) as queries:
        loaded, membership = project_and_membership(manager, project.pk)
        assert membership.project is loaded and membership.user is manager  # no query for either
    assert len(queries) == 1
    for mine, orm in (
        (loaded, Project.objects.get(pk=project.pk)),
        (membership, Membership.objects.get(project=project, user=manager)),
    ):
        assert _fields(mine) == _fields(orm)
        assert {k: type(v) for k, v in _fields(mine).items()} == {k: type(v) for k, v in _fields(orm).items()}
        assert not mine._state.adding
    assert membership.role == Role.MANAGER


def test_non_members_superusers_and_bad_ids(project, outsider):
    assert project_and_membership(outsider, project.pk) == (project, None)
    root = factories.UserFactory(username="root", is_superuser=True)
    loaded, membership = project_and_membership(root, project.pk)
    assert loaded == project and membership.role == Role.ADMIN and membership.pk is None
    for user, project_id in (
        (AnonymousUser(), project.pk),
        (root, project.pk + 1000),
        (root, "abc"),
        (root, None),
        (root, 0),
        (root, MAX_ID + 1),
    ):
        assert project_and_membership(user, project_id) == (None, None)


@pytest.mark.parametrize("path", ["/api/v1/projects/{id}/", "/projects/{id}/"])
def test_a_huge_project_id_is_a_404(client_for, admin_user, path):
    from django.test import Client

    web = Client()
    web.force_login(admin_user)
    client = client_for(admin_user) if path.startswith("/api/") else web
    assert client.get(path.format(id=MAX_ID + 1)).status_code == 404
    assert client.get(path.format(id=Project.objects.get().pk)).status_code == 200
