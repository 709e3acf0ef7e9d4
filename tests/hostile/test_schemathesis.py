"""Schemathesis: generated requests for every operation in our OpenAPI schema, in-process against
the WSGI app, authenticated as a project admin (token). The one property: no 5xx, ever.

Path parameters named after our objects are pointed at real rows (the project, a task, an
annotation) so bodies are validated against real data instead of stopping at a 404.
Bounded by ``max_examples`` per operation so the whole run stays around a minute.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from projects.annotations.models import Annotation
from projects.core.services import token_create
from tests.api.test_permissions import build_world

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def _load_schema():
    # Built in-process with drf-spectacular's generator (the document /api/v1/schema/ serves);
    # schemathesis' lazy fixture loader does not work with pytest 9, so the schema is loaded here.
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = get_wsgi_application()
    return loaded


schema = _load_schema()


@pytest.fixture
def keep_test_connection():
    # Calling the WSGI app directly fires request_started/finished, whose close_old_connections
    # would close the test's PostgreSQL connection mid-transaction (Django's test client
    # disconnects it the same way; SQLite's in-memory test database ignores the close).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def admin_world(db, keep_test_connection):
    world = build_world()
    _, key = token_create(user=world.users["admin"])
    annotation, _ = Annotation.objects.get_or_create(
        task=world.task,
        user=world.users["annotator"],
        defaults={"project": world.project, "result": {"topic": "business"}, "status": "submitted"},
    )
    ids = {
        "project_pk": world.project.pk,
        "project_id": world.project.pk,
        "task_id": world.task.pk,
        "annotation_id": annotation.pk,
    }
    return world, key, ids


# Deleting the project would turn every later example into a 404; it is covered by the table.
@schema.exclude(path_regex=r"^/api/v1/projects/\{pk\}/$", method="DELETE").parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case, admin_world, settings):
    settings.ALLOWED_HOSTS = ["testserver", "localhost"]  # schemathesis' WSGI requests say localhost
    world, key, ids = admin_world
    for name in list(case.path_parameters or {}):
        if name in ids:
            case.path_parameters[name] = ids[name]
    case.call_and_validate(headers={"Authorization": f"Token {key}"}, checks=[not_a_server_error])
