"""Filter and ordering keys that walk relations (``__``) into other tables are refused or ignored,
never applied: they would turn any list into an oracle on, e.g., password hashes.

The generic test runs over every GET endpoint in the permission table, so new lists are covered.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests import factories
from tests.api.permission_table import TABLE
from tests.api.test_permissions import build_world, fill

pytestmark = pytest.mark.django_db

HOSTILE_PARAMS = [
    {"ordering": "user__password"},
    {"ordering": "-article__project__memberships__user__password"},
    {"ordering": "created_by__password,id"},
    {"o": "user__password"},
    {"sort": "user__password"},
    {"order_by": "actor__password"},
    {"user__password__startswith": "md5$"},
    {"actor__password__startswith": "md5$"},
    {"article__text__icontains": "zz-not-there"},
    {"project__memberships__user__password__startswith": "x"},
    {"task__project__name": "zz-not-there"},
    {"id__in": "1,2,3"},
]
GETS = sorted(k for k in TABLE if k[0] == "GET" and TABLE[k].statuses["admin"] == 200 and "/docs/" not in k[1])


@pytest.mark.parametrize("template", [p for _, p in GETS], ids=[p for _, p in GETS])
def test_relation_lookups_in_query_params_are_never_applied(template):
    world = build_world()
    admin = world.users["admin"]
    client = APIClient()
    client.force_authenticate(admin)
    url = fill(template, TABLE[("GET", template)], world, admin)
    baseline = client.get(url)
    assert baseline.status_code == 200
    expected = _body(baseline)
    for params in HOSTILE_PARAMS:
        response = client.get(url, params)
        assert response.status_code in (200, 400), f"{url} {params}: {response.status_code}"
        if response.status_code == 200:
            # Ignored, not applied: the answer is the same as without the parameter.
            assert _body(response) == expected, f"{url} applied {params}"


def _body(response):
    if response.get("Content-Type", "").split(";")[0] == "application/json":
        return response.json()
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def test_task_manager_ordering_is_whitelisted(project, manager):
    for _ in range(3):
        factories.TaskFactory(article=factories.ArticleFactory(project=project))
    client = APIClient()
    client.force_authenticate(manager)
    url = f"/api/v1/projects/{project.pk}/tasks/"
    assert client.get(url, {"ordering": "-priority,id"}).status_code == 200
    for key in (
        "article__text",
        "-article__title",
        "annotations__user__password",
        "project__name",
        "priority,article__text",
    ):
        response = client.get(url, {"ordering": key})
        assert response.status_code == 400, key
        assert response.json()["error"]["fields"]["ordering"].startswith("allowed:")
    for injection in ("' OR 1=1 --", '") OR ("1"="1', "%", "\\", "Lyon' UNION SELECT password FROM auth_user --"):
        response = client.get(url, {"search": injection})
        assert response.status_code in (200, 400), injection
        if response.status_code == 200:
            assert response.json()["count"] == 0, f"search {injection!r} matched everything"


def test_task_manager_bulk_filter_refuses_unknown_keys(project, manager):
    factories.TaskFactory(article=factories.ArticleFactory(project=project))
    client = APIClient()
    client.force_authenticate(manager)
    before = list(project.tasks.values("id", "priority"))
    response = client.post(
        f"/api/v1/projects/{project.pk}/tasks/bulk/",
        {"action": "set_priority", "priority": 9, "filter": {"article__text__contains": "Lyon"}},
        format="json",
    )
    assert response.status_code == 400
    assert list(project.tasks.values("id", "priority")) == before
