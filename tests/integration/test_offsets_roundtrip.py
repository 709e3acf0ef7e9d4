"""Span offsets stay exact for every script through submit, export and re-import.

Text with ZWJ emoji, combining marks, CRLF line ends and right-to-left scripts is labeled through
the API, exported in Label Studio and native JSONL form, imported into a fresh project, and the
imported annotation must carry the very same code-point offsets and covered text.
"""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from projects.annotations.models import Annotation
from projects.core.models import Role
from tests import factories

pytestmark = pytest.mark.django_db

TEXT = "Café 👩‍💻 Zoë\r\nشركة Quantix في ليون\r\nשלום e\u0301te 🇫🇷 Lyon."
SCHEMA = {"fields": [{"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC"]}]}
WORDS = [("👩‍💻 Zoë", "PERSON"), ("شركة Quantix", "ORG"), ("ليون", "LOC"), ("e\u0301te", "ORG"), ("🇫🇷 Lyon", "LOC")]


def spans() -> list[dict]:
    return [{"start": TEXT.index(w), "end": TEXT.index(w) + len(w), "label": label} for w, label in WORDS]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _project_with_manager(name: str):
    project = factories.ProjectFactory(name=name, label_schema=SCHEMA)
    manager = factories.UserFactory(username=f"{name}-manager", email=f"{name}@example.com")
    factories.MembershipFactory(project=project, user=manager, role=Role.MANAGER)
    return project, manager


@pytest.mark.parametrize(("export_format", "import_format"), [("label-studio", "labelstudio")])
def test_spans_survive_submit_export_and_reimport(
    client_for, django_capture_on_commit_callbacks, export_format, import_format
):
    source, manager = _project_with_manager("source")
    task = factories.TaskFactory(article__project=source, article__text=TEXT, article__external_id="x-1")
    client = client_for(manager)
    client.post(f"/api/v1/projects/{source.pk}/next-task/")
    submitted = client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"entities": spans()}}, format="json")
    assert submitted.status_code == 201, submitted.content
    expected = sorted(
        ({**s, "text": TEXT[s["start"] : s["end"]]} for s in spans()), key=lambda s: (s["start"], s["end"])
    )
    assert submitted.json()["result"]["entities"] == expected

    exported = client.get(f"/api/v1/projects/{source.pk}/export/", {"format": export_format})
    assert exported.status_code == 200
    body = b"".join(exported.streaming_content) if exported.streaming else exported.content

    target, _ = _project_with_manager("target")
    factories.MembershipFactory(project=target, user=manager, role=Role.MANAGER)
    upload = SimpleUploadedFile("export.json", body, content_type="application/json")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/projects/{target.pk}/imports/", {"file": upload, "format": import_format}, format="multipart"
        )
    assert response.status_code == 202, response.content
    job = client.get(f"/api/v1/projects/{target.pk}/imports/{response.json()['id']}/").json()
    assert (job["status"], job["rows_created"], job["rows_failed"]) == ("succeeded", 1, 0), job

    imported = Annotation.objects.get(project=target)
    assert imported.task.text == TEXT  # CRLF and combining marks kept byte for byte
    assert imported.result["entities"] == expected


def test_native_jsonl_export_carries_exact_offsets(client_for):
    project, manager = _project_with_manager("native")
    task = factories.TaskFactory(article__project=project, article__text=TEXT)
    client = client_for(manager)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"entities": spans()}}, format="json")
    exported = client.get(f"/api/v1/projects/{project.pk}/export/", {"format": "jsonl"})
    body = b"".join(exported.streaming_content) if exported.streaming else exported.content
    row = json.loads(body.decode().splitlines()[0])
    found = {(s["start"], s["end"], s["text"]) for a in row["annotations"] for s in a["result"]["entities"]}
    assert found == {(TEXT.index(w), TEXT.index(w) + len(w), w) for w, _ in WORDS}
