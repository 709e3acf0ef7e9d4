"""Roles on every server-rendered page, found by walking the URL resolver.

Every page whose URL names a project, task, annotation or member is checked automatically:
anonymous users are sent to the login page, members of another project get 404 (never data), and
a refused POST changes nothing. ``MIN_ROLE`` adds the role ladder: members below a page's role get
403, those at or above it get through. Pages without an entry get the outsider and anonymous
checks only (they may decide per object, e.g. only tasks you hold).
"""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.test import Client
from django.urls import get_resolver

from projects.annotations.models import ReviewState
from projects.core.models import ROLE_RANK, GuidelineVersion, Membership, Role
from tests import factories
from tests.api.test_permissions import _AllApiEndpoints, assert_unchanged, db_snapshot

pytestmark = pytest.mark.django_db

MIN_ROLE = {
    "web-members": Role.MANAGER,
    "web-member-add": Role.MANAGER,
    "web-member-invite": Role.MANAGER,
    "web-member-update": Role.MANAGER,
    "web-member-remove": Role.MANAGER,
    "web-review-next": Role.REVIEWER,
    "web-review-annotation": Role.REVIEWER,
    "web-adjudication": Role.REVIEWER,
    "web-adjudicate-task": Role.REVIEWER,
    "web-review-returned": Role.ANNOTATOR,
    "web-project": Role.ANNOTATOR,
    # pages of other features, checked here on the same ladder
    "web-guidelines": Role.ANNOTATOR,
    "web-guideline-version": Role.ANNOTATOR,
    "web-label-start": Role.ANNOTATOR,
    "web-my-submissions": Role.ANNOTATOR,
    "web-progress": Role.MANAGER,
    "web-tasks": Role.MANAGER,
    "web-tasks-bulk": Role.MANAGER,
    "web-prelabel": Role.MANAGER,
    "web-prelabel-start": Role.MANAGER,
    "web-prelabel-train": Role.MANAGER,
    "web-prelabel-labeler-add": Role.ADMIN,
    "web-quality": Role.REVIEWER,
    "web-quality-recompute": Role.MANAGER,
}
SCOPED = {"project_id", "task_id", "annotation_id", "member_id"}
PERSONAS = ("admin", "manager", "reviewer", "annotator", "outsider", "anonymous")


class _Pages(_AllApiEndpoints):
    def should_include_endpoint(self, path, callback) -> bool:
        return not path.startswith(("/api/", "/admin/", "/static/", "/media/"))

    def get_allowed_methods(self, callback) -> list[str]:
        return ["ANY"]


def scoped_pages() -> list[tuple[str, str]]:
    """(url name, path template) of every page whose URL names a project-scoped object."""
    by_path = {}
    for pattern in _walk(get_resolver().url_patterns, ""):
        by_path.setdefault(pattern[1], pattern[0])
    pages = []
    for path, _regex, _method, _callback in _Pages(patterns=get_resolver().url_patterns)._get_api_endpoints(None, ""):
        names = set(re.findall(r"{(\w+)}", path))
        if names & SCOPED and names <= SCOPED | {"version"}:
            pages.append((by_path.get(path, path), path))
    return sorted(set(pages))


def _walk(patterns, prefix):
    for p in patterns:
        if hasattr(p, "url_patterns"):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        else:
            route = prefix + str(p.pattern)
            path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
            yield (p.name, path)


def build_world() -> dict:
    project = factories.ProjectFactory(overlap=2)
    users = {}
    for role in (Role.ADMIN, Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR):
        users[role] = factories.UserFactory(username=f"page-{role}")
        factories.MembershipFactory(project=project, user=users[role], role=role)
    outsider = factories.UserFactory(username="page-outsider")
    factories.MembershipFactory(user=outsider, role=Role.ADMIN)
    users["outsider"] = outsider
    task = factories.TaskFactory(article__project=project)
    annotation = factories.AnnotationFactory(
        task=task, user=users[Role.ANNOTATOR], review_state=ReviewState.PENDING, result={"topic": "business"}
    )
    factories.AnnotationFactory(task=task, result={"topic": "politics"})
    GuidelineVersion.objects.get_or_create(project=project, version=1, defaults={"text": "Be careful."})
    member = Membership.objects.get(project=project, user=users[Role.ANNOTATOR])
    values = {
        "project_id": project.pk,
        "task_id": task.pk,
        "annotation_id": annotation.pk,
        "member_id": member.pk,
        "version": 1,
    }
    return {"users": users, "values": values}


def test_the_walk_finds_the_pages():
    names = {name for name, _ in scoped_pages()}
    assert {"web-members", "web-review-annotation", "web-adjudicate-task", "web-project"} <= names
    assert not set(MIN_ROLE) - names, "MIN_ROLE lists pages that no longer exist"


CASES = [(name, path) for name, path in scoped_pages()]


@pytest.mark.parametrize(("name", "template"), CASES, ids=[name or path for name, path in CASES])
def test_page_roles(name, template):
    world = build_world()
    url = template.format(**world["values"])
    minimum = MIN_ROLE.get(name)
    for persona in PERSONAS:
        with transaction.atomic():  # each persona sees the world as built, whatever the one before did
            _check(url, minimum, world, persona)
            transaction.set_rollback(True)


def _check(url: str, minimum: str | None, world: dict, persona: str) -> None:
    client = Client()
    user = world["users"].get(persona if persona in ("outsider", "anonymous") else Role(persona))
    if user is not None:
        client.force_login(user)
    response = client.get(url)
    method = "GET"
    if response.status_code == 405:
        method = "POST"
        before = db_snapshot()
        response = client.post(url, {"role": "annotator", "user": "nobody", "verdict": "accept"})
    status = response.status_code
    where = f"{method} {url} as {persona}"
    if persona == "anonymous":
        assert status == 302 and "/login/" in response["Location"], where
    elif persona == "outsider":
        assert status == 404, f"{where}: {status}"
    elif minimum is None:
        return  # not in MIN_ROLE: the page decides per object (e.g. only tasks you hold)
    elif ROLE_RANK[persona] < ROLE_RANK[minimum]:
        assert status == 403, f"{where}: {status}"
    else:
        assert status not in (403, 404), f"{where}: {status}"
    refused = persona in ("outsider", "anonymous") or (minimum and ROLE_RANK[persona] < ROLE_RANK[minimum])
    if method == "POST" and refused:
        assert_unchanged(before, db_snapshot(), where)
