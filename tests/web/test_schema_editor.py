import json

import pytest
from django.test import Client

from tests import factories
from tests.core.test_labelconfig import LLM_EVAL

pytestmark = pytest.mark.django_db


@pytest.fixture
def web():
    def login(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return login


def _post_json(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_manager_saves_a_valid_schema_as_a_new_version(web, project, manager):
    schema = {"fields": [{"name": "sentiment", "type": "choice", "options": ["pos", "neg"]}]}
    response = web(manager).post(f"/projects/{project.pk}/schema/", {"schema": json.dumps(schema)})
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.label_schema["fields"][0]["options"] == ["pos", "neg"] and project.schema_version == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"fields": [{"name": "x", "type": "choice", "options": ["only"]}]}), "fields[0] (x).options"),
    ],
)
def test_invalid_schema_is_not_saved_and_the_error_names_the_field(web, project, manager, text, message):
    before = project.label_schema
    response = web(manager).post(f"/projects/{project.pk}/schema/", {"schema": text})
    assert response.status_code == 200 and message in response.content.decode()
    project.refresh_from_db()
    assert project.label_schema == before and project.schema_version == 1


def test_check_returns_errors_or_preview_without_saving(web, project, manager):
    client = web(manager)
    bad = _post_json(client, f"/projects/{project.pk}/schema/check/", {"schema": {"fields": [{"name": "q"}]}})
    assert bad.status_code == 400 and "fields[0] (q).type" in bad.json()["fields"]
    schema = {
        "fields": [
            {"name": "e", "type": "spans", "labels": ["A"]},
            {"name": "t", "type": "text", "prefill": "payload.response"},
        ]
    }
    ok = _post_json(client, f"/projects/{project.pk}/schema/check/", {"schema": schema}).json()
    assert ok["ok"] and ok["preview"]["colors"]["e"]["A"]["fg"] in ("#000000", "#ffffff")
    assert ok["preview"]["prefill"] == {"t": "Elena met Quantix in Lyon."}  # the sample payload: no tasks yet
    project.refresh_from_db()
    assert project.schema_version == 1


def test_labelstudio_import_converts_without_saving(web, project, manager):
    response = _post_json(web(manager), f"/projects/{project.pk}/schema/import-labelstudio/", {"config": LLM_EVAL})
    body = response.json()
    assert response.status_code == 200 and body["ok"]
    assert {f["type"] for f in body["schema"]["fields"]} == {"pairwise", "text", "rating"}
    assert body["warnings"]
    bad = _post_json(web(manager), f"/projects/{project.pk}/schema/import-labelstudio/", {"config": "<View>"})
    assert bad.status_code == 400 and "not valid XML" in bad.json()["message"]
    project.refresh_from_db()
    assert project.schema_version == 1


def test_below_manager_gets_403_and_outsider_404(web, project, annotator, reviewer, outsider):
    for user in (annotator, reviewer):
        assert web(user).get(f"/projects/{project.pk}/schema/").status_code == 403
        assert _post_json(web(user), f"/projects/{project.pk}/schema/check/", {"schema": {}}).status_code == 403
    assert web(outsider).get(f"/projects/{project.pk}/schema/").status_code == 404
    assert web(outsider).post(f"/projects/{project.pk}/schema/", {"schema": "{}"}).status_code == 404


def test_preview_uses_the_first_task(web, project, manager):
    factories.TaskFactory(article__project=project, article__title="First one", payload={"response": "R"})
    content = web(manager).get(f"/projects/{project.pk}/schema/").content.decode()
    assert "First one" in content and "first task" in content
