"""The Idempotency-Key header on POST /projects/{id}/imports/: a retry answers with the first job."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from projects.documents.models import Article
from projects.imports import services
from projects.imports.models import ImportJob
from tests import factories

pytestmark = pytest.mark.django_db

ROWS = [{"id": f"k{i}", "title": f"T{i}", "text": f"Text number {i}."} for i in range(5)]
CONTENT = ("\n".join(json.dumps(r) for r in ROWS) + "\n").encode()


def post(client, project, key, content=CONTENT, **fields):
    data = {"file": SimpleUploadedFile("a.jsonl", content), **fields}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(f"/api/v1/projects/{project.pk}/imports/", data, format="multipart", **headers)


@pytest.fixture
def mgr(client_for, manager):
    return client_for(manager)


def test_retry_with_the_same_key_returns_the_first_job(mgr, project, media, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(mgr, project, "upload-1")
    assert first.status_code == 202, first.content
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = post(mgr, project, "upload-1")
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert again.json()["status"] == "succeeded" and again.json()["rows_created"] == 5
    assert callbacks == []  # no second import was queued
    assert ImportJob.objects.filter(project=project).count() == 1
    assert Article.objects.filter(project=project).count() == 5
    assert list((media / "imports").iterdir()) == []  # the retry's upload is not kept


def test_same_key_with_another_file_or_options_is_422(mgr, project, media, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert post(mgr, project, "k").status_code == 202
    other_file = post(mgr, project, "k", content=CONTENT.replace(b"Text", b"Body"))
    assert other_file.status_code == 422, other_file.content
    error = other_file.json()["error"]
    assert error["code"] == "idempotency_key_reused" and "different import" in error["message"]
    assert post(mgr, project, "k", split="paragraph").status_code == 422
    assert ImportJob.objects.filter(project=project).count() == 1
    assert list((media / "imports").iterdir()) == []


def test_without_a_key_every_post_is_a_new_job(mgr, project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert post(mgr, project, None).status_code == 202
        assert post(mgr, project, None).status_code == 202
    assert ImportJob.objects.filter(project=project).count() == 2


def test_key_is_per_user_and_per_project(client_for, mgr, project, manager, django_capture_on_commit_callbacks):
    other = factories.UserFactory(username="other-manager")
    factories.MembershipFactory(project=project, user=other, role="manager")
    second_project = factories.ProjectFactory()
    factories.MembershipFactory(project=second_project, user=manager, role="manager")
    with django_capture_on_commit_callbacks(execute=True):
        assert post(mgr, project, "shared").status_code == 202
        assert post(client_for(other), project, "shared").status_code == 202
        assert post(mgr, second_project, "shared").status_code == 202
    assert ImportJob.objects.filter(idempotency_key="shared").count() == 3


def test_key_expires_after_24_hours(mgr, project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(mgr, project, "daily")
    ImportJob.objects.filter(pk=first.json()["id"]).update(created_at=timezone.now() - timedelta(hours=25))
    with django_capture_on_commit_callbacks(execute=True):
        again = post(mgr, project, "daily")
    assert again.status_code == 202 and again.json()["id"] != first.json()["id"]
    assert ImportJob.objects.get(pk=first.json()["id"]).idempotency_key == ""  # the old job keeps its data


@pytest.mark.parametrize("key", ["", "a" * 256, "with space", "caf\u00e9"])
def test_invalid_key_is_400(mgr, project, key):
    response = mgr.post(
        f"/api/v1/projects/{project.pk}/imports/",
        {"articles": ROWS},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert response.status_code == 400, response.content
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert not ImportJob.objects.exists()


def test_json_body_retry(mgr, project, django_capture_on_commit_callbacks):
    url = f"/api/v1/projects/{project.pk}/imports/"
    with django_capture_on_commit_callbacks(execute=True):
        first = mgr.post(url, {"articles": ROWS}, format="json", HTTP_IDEMPOTENCY_KEY="j1")
        again = mgr.post(url, {"articles": ROWS}, format="json", HTTP_IDEMPOTENCY_KEY="j1")
        changed = mgr.post(url, {"articles": ROWS[:2]}, format="json", HTTP_IDEMPOTENCY_KEY="j1")
    assert (first.status_code, again.status_code, changed.status_code) == (202, 200, 422)
    assert again.json()["id"] == first.json()["id"]
    assert ImportJob.objects.count() == 1


def test_a_refused_file_does_not_use_up_the_key(mgr, project):
    assert post(mgr, project, "retry-me", content=b"").status_code == 400
    assert not ImportJob.objects.exists()


def test_key_in_the_openapi_schema(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/projects/{project_pk}/imports/"]["post"]
    header = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and not header.get("required", False)
    assert {"200", "202", "422"} <= set(operation["responses"])


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="concurrent requests need PostgreSQL (SQLite serializes writers)")
@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_with_one_key_create_exactly_one_job(client_for, project, manager, media, monkeypatch):
    # Both requests look the key up before either creates its job; the unique constraint decides.
    barrier = threading.Barrier(2, timeout=20)
    lookup = services.import_for_key

    def racing_lookup(**kwargs):
        job = lookup(**kwargs)
        if job is None:
            barrier.wait()
        return job

    monkeypatch.setattr(services, "import_for_key", racing_lookup)
    discarded = []
    discard = services.discard_upload
    monkeypatch.setattr(services, "discard_upload", lambda path: (discarded.append(path), discard(path)))
    responses = []

    def send():
        try:
            responses.append(post(client_for(manager), project, "same-key"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.status_code for r in responses) == [200, 202], [r.content for r in responses]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert ImportJob.objects.filter(project=project).count() == 1
    assert Article.objects.filter(project=project).count() == 5
    assert len(discarded) == 1  # the loser hit the unique constraint and dropped its upload
    assert list((media / "imports").iterdir()) == []
