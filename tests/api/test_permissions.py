"""Role x endpoint matrix for the whole API, exhaustive by construction.

The table lives in ``tests/api/permission_table.py``. ``test_every_api_endpoint_is_in_the_table``
walks the URL resolver and fails for any route without an entry; ``test_permission_matrix`` runs
each (endpoint, persona) pair against a fresh database and checks the status, that an outsider's
response never contains our project's data, and that a refused write changed nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.urls import get_resolver
from drf_spectacular.generators import EndpointEnumerator
from rest_framework.test import APIClient

from projects.assignment.services import task_next_for_user
from projects.core import services
from projects.core.models import ApiToken, Membership, Role
from projects.core.services import token_create
from tests import factories
from tests.api.permission_table import ROLES, TABLE, Rule

API_PREFIX = "/api/v1/"
MARKER = "zq-secret-marker-7731"  # appears in our project's data; an outsider must never see it


class _AllApiEndpoints(EndpointEnumerator):
    """drf-spectacular's resolver walk, keeping every route under /api/v1/ (also non-DRF views)."""

    def should_include_endpoint(self, path, callback) -> bool:
        return path.startswith(API_PREFIX) and "{format}" not in path  # format-suffix twins

    def get_allowed_methods(self, callback) -> list[str]:
        if not hasattr(callback, "cls"):
            return ["ANY"]  # a plain Django view under /api/v1/: give it an ("ANY", path) entry
        return super().get_allowed_methods(callback)


def api_endpoints() -> set[tuple[str, str]]:
    enumerator = _AllApiEndpoints(patterns=get_resolver().url_patterns)
    return {(method, path) for path, _regex, method, _cb in enumerator._get_api_endpoints(None, "")}


def test_every_api_endpoint_is_in_the_table():
    missing = sorted(api_endpoints() - set(TABLE), key=lambda k: (k[1], k[0]))
    assert not missing, (
        "These API endpoints have no entry in the permission table. Add one per (method, path) to "
        "TABLE in tests/api/permission_table.py, with the status each role gets:\n"
        + "\n".join(f'    ("{m}", "{p}"): rule(admin=..., ...),' for m, p in missing)
    )


def test_table_has_no_stale_entries():
    stale = sorted(set(TABLE) - api_endpoints())
    assert not stale, f"Entries for endpoints that no longer exist; remove them from the table: {stale}"


# --- the world every case runs in ---------------------------------------------------------------


@dataclass
class World:
    project: Any
    other_project: Any
    users: dict[str, Any]
    task: Any
    open_task: Any
    newcomer: Any
    audit_event: Any
    tokens: dict[str, int]

    def token_of(self, user) -> int:
        # Anonymous requests aim at the annotator's token: they must not reach it either.
        return self.tokens[(user or self.users["annotator"]).username]


def build_world() -> World:
    creator = factories.UserFactory(username="ada", is_staff=False)
    project = services.project_create(
        actor=creator,
        name=f"Project {MARKER}",
        label_schema=dict(factories.SIMPLE_SCHEMA),
        guidelines=f"Guidelines {MARKER}",
        description=MARKER,
    )
    users = {"admin": creator}
    for role, name in (("manager", "manny"), ("reviewer", "rita"), ("annotator", "anna")):
        users[role] = factories.UserFactory(username=name)
        services.membership_add(
            project=project,
            actor=creator,
            actor_membership=Membership.objects.get(project=project, user=creator),
            user=users[role],
            role=role,
        )
    outsider = factories.UserFactory(username="olga")
    other = services.project_create(actor=outsider, name="Elsewhere", label_schema=dict(factories.SIMPLE_SCHEMA))
    users["outsider"] = outsider
    for i in range(4):
        factories.TaskFactory(article=factories.ArticleFactory(project=project, text=f"{MARKER} text {i}"))
    assignment = task_next_for_user(project=project, user=users["annotator"])
    task = assignment.task
    open_task = project.tasks.exclude(pk=task.pk).order_by("pk").first()
    tokens = {}
    for user in users.values():
        token, _ = token_create(user=user, name=f"{user.username}-token")
        tokens[user.username] = token.pk
    return World(
        project=project,
        other_project=other,
        users=users,
        task=task,
        open_task=open_task,
        newcomer=factories.UserFactory(username="nina"),
        audit_event=project.audit_events.order_by("pk").first(),
        tokens=tokens,
    )


# Default values for path placeholders: (world, acting user) -> value. Entries override with ``ids``.
PLACEHOLDERS = {
    "project_pk": lambda w, user: w.project.pk,
    "task_id": lambda w, user: w.task.pk,
}
# ``{pk}`` means a different object under each prefix.
PK_BY_PREFIX = {
    "/api/v1/projects/{pk}/": lambda w, user: w.project.pk,
    "/api/v1/projects/{project_pk}/members/{pk}/": lambda w, user: (
        Membership.objects.get(project=w.project, user=w.users["annotator"]).pk
    ),
    "/api/v1/projects/{project_pk}/audit/{pk}/": lambda w, user: w.audit_event.pk,
}


def fill(template: str, rule_: Rule, world: World, user) -> str:
    values = {name: make(world, user) for name, make in PLACEHOLDERS.items()}
    if template in PK_BY_PREFIX:
        values["pk"] = PK_BY_PREFIX[template](world, user)
    if rule_.ids:
        values.update(rule_.ids(world, user))
    names = re.findall(r"{(\w+)}", template)
    unknown = [n for n in names if n not in values]
    assert not unknown, (
        f"No value for {unknown} in {template}: add ids=lambda w, user: {{...}} to its table entry "
        "or a default to PLACEHOLDERS / PK_BY_PREFIX in tests/api/test_permissions.py"
    )
    return template.format(**values)


# --- database snapshot: a refused write must leave every row as it was ---------------------------

SNAPSHOT_APPS = (
    "projects",
    "documents",
    "assignment",
    "annotations",
    "prelabel",
    "exports",
    "quality",
    "imports",
    "auth",
)
VOLATILE = {("projects", "apitoken"): {"last_used_at"}}


def db_snapshot() -> dict[str, list[dict]]:
    snapshot = {}
    for model in apps.get_models():
        meta = model._meta
        if meta.app_label not in SNAPSHOT_APPS or not meta.managed:
            continue
        skip = VOLATILE.get((meta.app_label, meta.model_name), set())
        rows = model._base_manager.order_by("pk").values()
        snapshot[meta.label] = [{k: v for k, v in row.items() if k not in skip} for row in rows]
    return snapshot


def assert_unchanged(before: dict, after: dict, context: str) -> None:
    changed = [label for label in before if before[label] != after.get(label)]
    assert not changed, f"{context} was refused but changed these tables: {changed}"


CASES = [
    pytest.param(method, path, role, id=f"{method} {path} as {role}")
    for (method, path), _rule in sorted(TABLE.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    for role in ROLES
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "template", "role"), CASES)
def test_permission_matrix(method, template, role):
    rule_ = TABLE[(method, template)]
    expected = rule_.statuses[role]
    world = build_world()
    user = world.users.get(role)
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    url = fill(template, rule_, world, user)
    body = rule_.body(world) if callable(rule_.body) else rule_.body
    refused_write = method not in ("GET", "HEAD", "OPTIONS") and expected >= 400
    before = db_snapshot() if refused_write else None

    response = client.generic(method, url, data=_json(body), content_type="application/json")

    assert response.status_code == expected, (
        f"{method} {url} as {role}: expected {expected}, got {response.status_code}: {response.content[:300]!r}"
    )
    if role == "outsider":
        assert MARKER not in response.content.decode(errors="replace"), f"{method} {url} leaked data to an outsider"
    if expected >= 400 and response.get("Content-Type", "").startswith("application/json"):
        assert set(response.json()) == {"error"}, "errors use the one error body"
    if refused_write:
        assert_unchanged(before, db_snapshot(), f"{method} {url} as {role}")


def _json(body) -> str:
    import json

    return "" if body is None else json.dumps(body)


# --- token scopes apply to every endpoint --------------------------------------------------------

WRITES = sorted(k for k in TABLE if k[0] in ("POST", "PUT", "PATCH", "DELETE"))


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "template"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
def test_read_scoped_token_cannot_write_anywhere(method, template):
    """A ``read`` token held by the project admin is refused on every write, and nothing changes."""
    rule_ = TABLE[(method, template)]
    world = build_world()
    admin = world.users["admin"]
    _, key = token_create(user=admin, scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    url = fill(template, rule_, world, admin)
    body = rule_.body(world) if callable(rule_.body) else rule_.body
    before = db_snapshot()
    response = client.generic(method, url, data=_json(body), content_type="application/json")
    assert response.status_code == 403, f"{method} {url} with a read token: {response.status_code}"
    assert_unchanged(before, db_snapshot(), f"{method} {url} with a read-scoped token")


@pytest.mark.django_db
def test_api_tokens_are_not_valid_for_other_roles_than_their_users():
    """A token authenticates as its own user only: the annotator's token gets annotator answers."""
    world = build_world()
    _, key = token_create(user=world.users["annotator"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(f"/api/v1/projects/{world.project.pk}/members/").status_code == 403
    assert client.get(f"/api/v1/projects/{world.other_project.pk}/").status_code == 404
    assert ApiToken.objects.filter(user=world.users["annotator"]).count() == 2
    assert Role.ANNOTATOR == Membership.objects.get(project=world.project, user=world.users["annotator"]).role
