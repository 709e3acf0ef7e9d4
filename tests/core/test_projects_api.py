import pytest

from projects.core.models import AuditEvent, GuidelineVersion, Membership, Project, Role
from projects.core.schema import DEMO_SCHEMA
from tests import factories

pytestmark = pytest.mark.django_db


def test_staff_creates_project_and_becomes_admin(client_for):
    staff = factories.UserFactory(username="boss", is_staff=True)
    response = client_for(staff).post(
        "/api/v1/projects/",
        {"name": "News", "label_schema": DEMO_SCHEMA, "overlap": 2, "guidelines": "# Hi"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["my_role"] == Role.ADMIN
    assert body["overlap"] == 2 and body["task_count"] == 0
    assert Membership.objects.get(project_id=body["id"], user=staff).role == Role.ADMIN
    assert GuidelineVersion.objects.filter(project_id=body["id"], version=1).exists()


def test_non_staff_cannot_create_project(client_for):
    user = factories.UserFactory()
    response = client_for(user).post("/api/v1/projects/", {"name": "X", "label_schema": DEMO_SCHEMA}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Project.objects.filter(name="X").exists()


def test_invalid_schema_gets_field_error_and_nothing_stored(client_for):
    staff = factories.UserFactory(is_staff=True)
    response = client_for(staff).post(
        "/api/v1/projects/",
        {"name": "Bad", "label_schema": {"fields": [{"name": "t", "type": "colour"}]}},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_schema" and "fields[0] (t).type" in error["fields"]
    assert not Project.objects.filter(name="Bad").exists()


def test_detail_has_live_counts(client_for, project, annotator):
    factories.TaskFactory.create_batch(3, article__project=project)
    body = client_for(annotator).get(f"/api/v1/projects/{project.pk}/").json()
    assert (body["article_count"], body["task_count"], body["annotation_count"]) == (3, 3, 0)


def test_outsider_gets_404_on_list_detail_and_update(client_for, project, outsider):
    client = client_for(outsider)
    assert project.pk not in [p["id"] for p in client.get("/api/v1/projects/").json()["results"]]
    assert client.get(f"/api/v1/projects/{project.pk}/").status_code == 404
    assert client.patch(f"/api/v1/projects/{project.pk}/", {"name": "pwned"}, format="json").status_code == 404
    assert client.delete(f"/api/v1/projects/{project.pk}/").status_code == 404
    project.refresh_from_db()
    assert project.name != "pwned"


def test_annotator_cannot_change_project(client_for, project, annotator):
    response = client_for(annotator).patch(f"/api/v1/projects/{project.pk}/", {"name": "mine"}, format="json")
    assert response.status_code == 403
    project.refresh_from_db()
    assert project.name != "mine"


def test_anonymous_gets_401(api, project):
    response = api.get(f"/api/v1/projects/{project.pk}/")
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_manager_updates_guidelines_making_a_new_version(client_for, project, manager):
    response = client_for(manager).patch(f"/api/v1/projects/{project.pk}/", {"guidelines": "v2 text"}, format="json")
    assert response.status_code == 200
    assert response.json()["guidelines_version"] == 2
    assert GuidelineVersion.objects.get(project=project, version=2).text == "v2 text"
    assert AuditEvent.objects.filter(project=project, action="project.update").exists()


def test_only_admin_deletes(client_for, project, manager, admin_user):
    assert client_for(manager).delete(f"/api/v1/projects/{project.pk}/").status_code == 403
    assert client_for(admin_user).delete(f"/api/v1/projects/{project.pk}/").status_code == 204
    assert not Project.objects.filter(pk=project.pk).exists()


@pytest.mark.parametrize(
    ("field", "value"), [("overlap", 0), ("gold_ratio", 1.5), ("review_sample_percent", 101), ("lease_minutes", 0)]
)
def test_out_of_range_settings_rejected(client_for, project, admin_user, field, value):
    response = client_for(admin_user).patch(f"/api/v1/projects/{project.pk}/", {field: value}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
