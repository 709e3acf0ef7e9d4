"""Snapshots: the build job, idempotency, byte-identical rebuilds, download and diff."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.storage import default_storage

from projects.exports import services
from projects.exports.models import ExportJob, ExportStatus
from tests import factories

pytestmark = pytest.mark.django_db


def start(client, project, data=None, **headers):
    return client.post(f"/api/v1/projects/{project.pk}/exports/", data or {}, format="json", **headers)


def build_all() -> None:
    for job in ExportJob.objects.filter(status=ExportStatus.QUEUED):
        services.export_build(job_id=job.pk)


def test_post_returns_202_and_enqueues_the_build_after_commit(
    dataset, client_for, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = start(client_for(manager), dataset.project, {"format": "csv", "gold": "exclude"})
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.json()["filters"]["gold"] == "exclude"
    assert len(callbacks) == 1


def test_build_records_counts_checksum_and_versions(dataset, client_for, manager):
    client = client_for(manager)
    job_id = start(client, dataset.project, {"format": "jsonl"}).json()["id"]
    build_all()
    job = client.get(f"/api/v1/projects/{dataset.project.pk}/exports/{job_id}/").json()
    assert job["status"] == "done"
    assert (job["row_count"], job["task_count"], job["annotation_count"]) == (2, 2, 3)
    assert job["schema_version"] == dataset.project.schema_version
    assert job["guidelines_version"] == dataset.project.guidelines_version
    download = client.get(job["download_url"])
    assert download.status_code == 200
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Disposition"].startswith("attachment;")
    data = b"".join(download.streaming_content)
    assert hashlib.sha256(data).hexdigest() == job["sha256"] and len(data) == job["size_bytes"]
    assert data == dataset.expected("native.jsonl")


def test_same_data_and_filters_give_byte_identical_snapshots(dataset, client_for, manager):
    client = client_for(manager)
    first = start(client, dataset.project, {"format": "csv"}).json()["id"]
    build_all()
    second = start(client, dataset.project, {"format": "csv"}).json()["id"]
    build_all()
    assert first != second
    a, b = ExportJob.objects.get(pk=first), ExportJob.objects.get(pk=second)
    assert a.sha256 == b.sha256
    assert default_storage.open(a.file).read() == default_storage.open(b.file).read()


def test_repeat_while_running_returns_the_same_job(dataset, client_for, manager):
    client = client_for(manager)
    first = start(client, dataset.project, {"format": "csv"}).json()
    again = start(client, dataset.project, {"format": "csv"}).json()
    other = start(client, dataset.project, {"format": "json"}).json()
    assert again["id"] == first["id"] and other["id"] != first["id"]


def test_idempotency_key_returns_the_first_job_even_after_it_finished(dataset, client_for, manager):
    client = client_for(manager)
    first = start(client, dataset.project, {"format": "csv"}, HTTP_IDEMPOTENCY_KEY="k-1").json()
    build_all()
    again = start(client, dataset.project, {"format": "csv"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 202 and again.json()["id"] == first["id"]
    clash = start(client, dataset.project, {"format": "json"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert clash.status_code == 409


def test_build_is_idempotent(dataset, client_for, manager):
    job_id = start(client_for(manager), dataset.project).json()["id"]
    assert services.export_build(job_id=job_id) is not None
    before = ExportJob.objects.get(pk=job_id)
    assert services.export_build(job_id=job_id) is None  # a redelivered message does nothing
    after = ExportJob.objects.get(pk=job_id)
    assert (after.sha256, after.finished_at, after.attempts) == (before.sha256, before.finished_at, before.attempts)


def test_malformed_snapshot_filters_get_400(dataset, client_for, manager):
    response = start(client_for(manager), dataset.project, {"min_agreement": "lots"})
    assert response.status_code == 400 and "min_agreement" in response.json()["error"]["fields"]


def test_snapshot_permissions(dataset, client_for, annotator, outsider):
    assert start(client_for(annotator), dataset.project).status_code == 403
    assert start(client_for(outsider), dataset.project).status_code == 404
    assert client_for(outsider).get(f"/api/v1/projects/{dataset.project.pk}/exports/").status_code == 404


def test_diff_lists_added_removed_and_relabeled_tasks(dataset, client_for, manager):
    client = client_for(manager)
    a = start(client, dataset.project).json()["id"]
    build_all()
    # t1 is relabeled: three new votes for politics outvote the two for business.
    for name in ("carl", "dave", "erin"):
        voter = factories.UserFactory(username=name)
        factories.AnnotationFactory(task=dataset.t1, user=voter, result={"topic": "politics"})
    new_task = factories.TaskFactory(article__project=dataset.project)
    factories.AnnotationFactory(task=new_task, user=voter, result={"topic": "business"})
    dataset.t2.annotations.all().delete()
    b = start(client, dataset.project).json()["id"]
    build_all()
    diff = client.get(f"/api/v1/projects/{dataset.project.pk}/exports/{a}/diff/{b}/").json()
    assert diff["added"] == [new_task.pk]
    assert diff["removed"] == [dataset.t2.pk]
    assert diff["relabeled"] == [dataset.t1.pk]
    assert diff["unchanged"] == 0


def test_hf_snapshot_has_a_dataset_card(dataset, client_for, manager):
    client = client_for(manager)
    job_id = start(client, dataset.project, {"format": "hf"}).json()["id"]
    build_all()
    card = client.get(f"/api/v1/projects/{dataset.project.pk}/exports/{job_id}/download/?file=card")
    text = b"".join(card.streaming_content).decode()
    assert card.status_code == 200 and "load_dataset" in text and "News" in text
    job = ExportJob.objects.get(pk=job_id)
    assert job.sha256 in text
