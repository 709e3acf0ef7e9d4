"""Health endpoint, error body shape, OpenAPI schema, pages."""

import pytest
from django.core.management import call_command

from projects.core.models import Project
from tests import factories

pytestmark = pytest.mark.django_db


def test_healthz_reports_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in (
        "/api/v1/projects/",
        "/api/v1/projects/{project_pk}/next-task/",
        "/api/v1/tasks/{task_id}/annotations/",
    ):
        assert path in text


def test_schema_and_docs_pages_served(client):
    user = factories.UserFactory()
    client.force_login(user)
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.get("/api/v1/docs/").status_code == 200


def test_seed_demo_is_idempotent(client):
    call_command("seed_demo", articles=5)
    call_command("seed_demo", articles=5)
    project = Project.objects.get(name__startswith="Demo")
    assert project.articles.count() == 5 and project.tasks.count() == 5
    assert client.login(username="alice", password="alice-demo-pass")
    page = client.get("/")
    assert project.name in page.content.decode()


def test_home_escapes_project_names(client):
    user = factories.UserFactory()
    factories.MembershipFactory(user=user, project__name="<script>alert(1)</script>")
    client.force_login(user)
    html = client.get("/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_pages_need_login(client):
    response = client.get("/")
    assert response.status_code == 302 and "/login/" in response["Location"]
