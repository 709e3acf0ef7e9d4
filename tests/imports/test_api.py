import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from projects.documents.models import Article
from projects.imports.models import ImportJob
from tests import factories

pytestmark = pytest.mark.django_db

ROWS = "\n".join(json.dumps({"id": f"x{i}", "text": f"Text {i}."}) for i in range(3)) + "\n"


@pytest.mark.parametrize("who", ["annotator", "reviewer"])
def test_members_below_manager_get_403(request, upload, who):
    user = request.getfixturevalue(who)
    response = upload("a.jsonl", ROWS, user=user)
    assert response.status_code == 403
    assert not Article.objects.exists()


def test_outsider_gets_404_everywhere(upload, outsider, client_for, project):
    assert upload("a.jsonl", ROWS, user=outsider).status_code == 404
    client = client_for(outsider)
    assert client.get(f"/api/v1/projects/{project.pk}/imports/").status_code == 404
    assert not Article.objects.exists()


def test_admin_can_import_and_list_and_read_jobs(upload, admin_user, client_for, project):
    response = upload("a.jsonl", ROWS, user=admin_user)
    assert response.status_code == 202
    job_id = response.json()["id"]
    client = client_for(admin_user)
    listing = client.get(f"/api/v1/projects/{project.pk}/imports/").json()
    assert [j["id"] for j in listing["results"]] == [job_id]
    detail = client.get(f"/api/v1/projects/{project.pk}/imports/{job_id}/").json()
    assert detail["status"] == "succeeded" and detail["created_by"] == "ada"


def test_annotator_cannot_read_jobs(upload, annotator, client_for, project):
    job_id = upload("a.jsonl", ROWS).json()["id"]
    client = client_for(annotator)
    assert client.get(f"/api/v1/projects/{project.pk}/imports/").status_code == 403
    assert client.get(f"/api/v1/projects/{project.pk}/imports/{job_id}/").status_code == 403
    assert client.get(f"/api/v1/projects/{project.pk}/imports/{job_id}/errors.csv").status_code == 403


def test_job_of_another_project_is_404(upload, client_for, manager):
    other = factories.ProjectFactory()
    factories.MembershipFactory(project=other, user=manager, role="manager")
    job_id = upload("a.jsonl", ROWS).json()["id"]
    assert client_for(manager).get(f"/api/v1/projects/{other.pk}/imports/{job_id}/").status_code == 404


def test_upload_over_the_limit_gets_413_and_stores_nothing(upload, settings, media):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1000
    response = upload("big.jsonl", ROWS * 200)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large" and "1000 bytes" in error["message"]
    assert not ImportJob.objects.exists() and not Article.objects.exists()
    assert not list((media / "imports").glob("*")) if (media / "imports").exists() else True


def test_file_over_the_limit_within_a_small_body_slack_is_413(upload, settings, media):
    # The body is within limit + multipart slack, so the handler counts the file bytes itself.
    settings.IMPORT_MAX_UPLOAD_BYTES = 200
    response = upload("big.jsonl", "x" * 300)
    assert response.status_code == 413
    assert not list((media / "imports").glob("*"))


def test_json_body_over_the_memory_limit_is_413(post_json, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    response = post_json({"articles": [{"text": "x" * 3000}]})
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_json_body_validation(post_json):
    response = post_json({"articles": []})
    assert response.status_code == 400 and "articles" in response.json()["error"]["fields"]
    response = post_json({"articles": [{"text": "x"}], "format": "csv"})
    assert response.status_code == 400


def test_missing_file_field(client_for, manager, project):
    response = client_for(manager).post(
        f"/api/v1/projects/{project.pk}/imports/",
        {"other": SimpleUploadedFile("a.jsonl", b'{"text": "x"}')},
        format="multipart",
    )
    assert response.status_code == 400 and response.json()["error"]["fields"] == {"file": "required"}


def test_errors_csv_lists_rows_with_line_numbers(upload, client_for, manager, project):
    job_id = upload("a.jsonl", '{"text": "ok"}\n{"text": 5}\n{broken\n').json()["id"]
    response = client_for(manager).get(f"/api/v1/projects/{project.pk}/imports/{job_id}/errors.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["line", "file", "message"]
    assert [r[0] for r in rows[1:]] == ["2", "3"]
    assert rows[1][2] == "text must be a string, got int"


def test_all_or_nothing_stores_nothing_when_a_row_is_bad(upload, project):
    existing = factories.ArticleFactory(project=project, external_id="x0", text="Old text.")
    body = upload("a.jsonl", ROWS + '{"id": "bad", "text": 1}\n', all_or_nothing="true").json()
    assert body["status"] == "failed" and "nothing was imported" in body["message"]
    assert body["errors"] == [{"line": 4, "message": "text must be a string, got int"}]
    assert body["rows_created"] == 0
    existing.refresh_from_db()
    assert existing.text == "Old text." and Article.objects.count() == 1


def test_all_or_nothing_imports_everything_when_all_rows_are_good(upload, project):
    body = upload("a.jsonl", ROWS, all_or_nothing="true").json()
    assert (body["status"], body["rows_read"], body["rows_created"], body["tasks_created"]) == ("succeeded", 3, 3, 3)


def test_job_is_enqueued_on_commit(client_for, manager, project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(manager).post(
            f"/api/v1/projects/{project.pk}/imports/",
            {"file": SimpleUploadedFile("a.jsonl", ROWS.encode())},
            format="multipart",
        )
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert len(callbacks) == 1 and not Article.objects.exists()
    callbacks[0]()
    assert ImportJob.objects.get().status == "succeeded" and Article.objects.count() == 3


def test_cancel_a_queued_job_and_then_running_it_does_nothing(
    client_for, manager, project, django_capture_on_commit_callbacks
):
    from projects.imports import services

    client = client_for(manager)
    with django_capture_on_commit_callbacks(execute=False):
        job_id = client.post(
            f"/api/v1/projects/{project.pk}/imports/",
            {"file": SimpleUploadedFile("a.jsonl", ROWS.encode())},
            format="multipart",
        ).json()["id"]
    response = client.post(f"/api/v1/projects/{project.pk}/imports/{job_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    services.import_run(job=ImportJob.objects.get(pk=job_id))
    assert not Article.objects.exists()
    assert client.post(f"/api/v1/projects/{project.pk}/imports/{job_id}/cancel/").status_code == 409


def test_token_with_read_scope_cannot_import(api, manager, project):
    from projects.core.services import token_create

    _, key = token_create(user=manager, name="ro", scope="read")
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = api.post(
        f"/api/v1/projects/{project.pk}/imports/",
        {"file": SimpleUploadedFile("a.jsonl", ROWS.encode())},
        format="multipart",
    )
    assert response.status_code == 403
    assert api.get(f"/api/v1/projects/{project.pk}/imports/").status_code == 200
