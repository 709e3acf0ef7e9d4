"""A Celery worker SIGKILLed mid-import or mid-export: a new worker with Celery beat finishes the
job by itself, nothing lost or doubled, and nothing half-written is ever served as done.

The kill is deterministic: the first worker runs with ``FAULT_HANG_AT`` (``projects/core/faults.py``)
so it stops at a named line and writes a marker file; the test then kills its whole process group.
Nobody sends the job again: the broker's visibility timeout is left at an hour, so the killed
message does not come back during the test, and the job returns only through the stalled-job
sweep (``imports.resume_stalled`` / ``exports.resume_stalled``) that beat runs every second here,
with a 5 s stall limit.
Needs REDIS_URL and a database a second process can open (see ``tests/conftest_worker.py``).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.files.storage import default_storage

from projects.assignment.models import Task
from projects.core.models import AuditEvent, Role
from projects.documents.models import Article
from projects.exports import services as export_services
from projects.exports.models import ExportJob, ExportStatus
from projects.imports import services as import_services
from projects.imports.jobs import import_enqueue
from projects.imports.models import ImportJob, ImportStatus
from tests import factories
from tests.conftest_worker import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROWS = 600
BAD_LINES = {250, 400}  # invalid JSON
DUPLICATE_LINE = 500  # repeats the id of line 10
# The second worker runs beat: a job with no progress for 5 s is resumed, checked every second.
RESUMING = {"JOB_STALL_SECONDS": "5", "JOB_STALL_CHECK_SECONDS": "1"}


def _resumed(action: str, job_id: int) -> bool:
    return AuditEvent.objects.filter(action=action, target_id=str(job_id), data__from="running").exists()


def _write_jsonl(path) -> None:
    with open(path, "w") as fh:
        for line in range(1, ROWS + 1):
            if line in BAD_LINES:
                fh.write("{not json\n")
                continue
            ident = 10 if line == DUPLICATE_LINE else line
            fh.write(json.dumps({"id": f"a{ident}", "title": f"Article {line}", "text": f"Text of article {line}."}))
            fh.write("\n")


def test_sigkill_mid_import_then_a_new_worker_imports_every_article_exactly_once(celery_worker_process, tmp_path):
    project = factories.ProjectFactory()
    manager = factories.UserFactory(username="importer")
    factories.MembershipFactory(project=project, user=manager, role=Role.MANAGER)
    upload = import_services.new_upload_path("news.jsonl")
    _write_jsonl(upload)
    job = import_services.import_create(
        project=project, actor=manager, path=upload, file_name="news.jsonl", options={"batch_size": 100}
    )
    # The third batch hangs inside its transaction (rows written, not committed); then SIGKILL.
    hang = {"FAULT_HANG_AT": "import.batch:3", "FAULT_MARKER_DIR": str(tmp_path)}
    first = celery_worker_process(env=hang)
    import_enqueue(job.pk)
    wait_for(lambda: (tmp_path / "import.batch").exists(), timeout=60, what="the third batch", worker=first)
    first.kill()

    job.refresh_from_db()
    assert job.status == ImportStatus.RUNNING
    assert (job.rows_read, job.rows_created) == (200, 200)  # two committed batches, the third rolled back
    assert Article.objects.filter(project=project).count() == 200
    assert upload.exists()  # the upload stays until the job ends

    second = celery_worker_process(beat=True, env=RESUMING)
    wait_for(
        lambda: ImportJob.objects.get(pk=job.pk).status == ImportStatus.SUCCEEDED,
        timeout=90,
        what="the import to finish on the second worker",
        worker=second,
    )
    job.refresh_from_db()
    assert job.attempts >= 2 and _resumed("import.resume", job.pk)
    expected = ROWS - len(BAD_LINES) - 1
    assert job.rows_read == ROWS
    assert (job.rows_created, job.rows_updated, job.rows_unchanged) == (expected, 0, 0)
    assert (job.rows_failed, job.tasks_created) == (3, expected)
    assert sorted(e["line"] for e in job.errors) == [*sorted(BAD_LINES), DUPLICATE_LINE]
    articles = Article.objects.filter(project=project)
    assert articles.count() == expected
    assert articles.values("external_id").distinct().count() == expected
    assert Task.objects.filter(project=project).count() == expected
    assert Task.objects.filter(project=project).values("article").distinct().count() == expected
    assert not upload.exists()


def test_sigkill_mid_export_then_a_new_worker_builds_the_snapshot_with_the_fresh_checksum(
    celery_worker_process, tmp_path, client_for
):
    project = factories.ProjectFactory()
    manager = factories.UserFactory(username="exporter")
    factories.MembershipFactory(project=project, user=manager, role=Role.MANAGER)
    for i in range(30):
        task = factories.TaskFactory(article__project=project, article__text=f"Story {i}.")
        factories.AnnotationFactory(task=task, result={"topic": "business"})
    hang = {"FAULT_HANG_AT": "export.write", "FAULT_MARKER_DIR": str(tmp_path)}
    first = celery_worker_process(env=hang)
    client = client_for(manager)
    response = client.post(f"/api/v1/projects/{project.pk}/exports/", {"format": "jsonl"}, format="json")
    assert response.status_code == 202
    job_id = response.json()["id"]
    wait_for(lambda: (tmp_path / "export.write").exists(), timeout=60, what="the snapshot write", worker=first)
    first.kill()

    # Meanwhile: the job says running, offers no download, and no file is stored for it.
    shown = client.get(f"/api/v1/projects/{project.pk}/exports/{job_id}/").json()
    assert (shown["status"], shown["download_url"], shown["sha256"]) == ("running", None, "")
    assert client.get(f"/api/v1/projects/{project.pk}/exports/{job_id}/download/").status_code == 404
    assert not default_storage.exists(f"exports/project-{project.pk}/{job_id}/data.jsonl")

    second = celery_worker_process(beat=True, env=RESUMING)
    wait_for(
        lambda: ExportJob.objects.get(pk=job_id).status == ExportStatus.DONE,
        timeout=90,
        what="the snapshot on the second worker",
        worker=second,
    )
    job = ExportJob.objects.get(pk=job_id)
    assert job.attempts >= 2 and _resumed("export.resume", job_id)
    assert not default_storage.exists(f"exports/project-{project.pk}/{job_id}/data.jsonl")  # attempt 1's
    with default_storage.open(job.file, "rb") as fh:
        stored = fh.read()
    fresh = b"".join(export_services.export_stream(project=project, options=export_services.options_of(job)))
    assert hashlib.sha256(stored).hexdigest() == job.sha256 == hashlib.sha256(fresh).hexdigest()
    assert (job.size_bytes, job.task_count) == (len(stored), 30)
    download = client.get(f"/api/v1/projects/{project.pk}/exports/{job_id}/download/")
    assert b"".join(download.streaming_content) == stored
