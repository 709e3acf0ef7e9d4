"""The stalled-import sweep (``imports.resume_stalled``): a run whose worker was lost is resumed
from its checkpoint and imports every row once; a live run, a finished job or a job waiting in
the outbox is left alone; a job that keeps losing its worker is given up with a clear message.

A lost worker is simulated in-process: the import's fault point raises ``Killed`` (a
``BaseException``, so nothing in the job catches it) inside the third batch's transaction, which
rolls back as a killed process's would, and the job stays ``running``.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from projects.assignment.models import Task
from projects.core import stalls
from projects.core.models import AuditEvent, PendingJob
from projects.documents.models import Article
from projects.imports import services, stalled
from projects.imports.models import ImportJob, ImportStatus
from tests.conftest_worker import wait_for
from tests.stalls import age, assert_sweep_leaves_alone

ROWS = 50
BATCH = 10
BAD_LINE = 17  # invalid JSON
DUPLICATE_LINE = 33  # repeats the id of line 5
EXPECTED = ROWS - 2


class Killed(BaseException):
    """Stands for SIGKILL: not an ``Exception``, so the job's own error handling never sees it."""


def _write(path) -> None:
    with open(path, "w") as fh:
        for line in range(1, ROWS + 1):
            if line == BAD_LINE:
                fh.write("{not json\n")
                continue
            ident = 5 if line == DUPLICATE_LINE else line
            fh.write(json.dumps({"id": f"a{ident}", "title": f"Article {line}", "text": f"Text {line}."}) + "\n")


@pytest.fixture
def new_job(project, manager):
    def create() -> ImportJob:
        path = services.new_upload_path("news.jsonl")
        _write(path)
        return services.import_create(
            project=project, actor=manager, path=path, file_name="news.jsonl", options={"batch_size": BATCH}
        )

    return create


@pytest.fixture
def kill_at(monkeypatch):
    """``kill_at(n)``: the n-th batch (counted over every run from now on) dies inside its transaction."""

    def arm(nth: int) -> None:
        hits = {"import.batch": 0}

        def fault(name: str) -> None:
            hits[name] = hits.get(name, 0) + 1
            if hits[name] == nth:
                raise Killed(name)

        monkeypatch.setattr(services, "fault_point", fault)

    return arm


def _killed_run(job: ImportJob) -> ImportJob:
    with pytest.raises(Killed):
        services.import_run(job=job)
    job.refresh_from_db()
    return job


def _assert_imported_once(job: ImportJob, project) -> None:
    job.refresh_from_db()
    assert job.status == ImportStatus.SUCCEEDED
    assert job.rows_read == ROWS
    assert (job.rows_created, job.rows_updated, job.rows_unchanged) == (EXPECTED, 0, 0)
    assert (job.rows_failed, job.tasks_created) == (2, EXPECTED)
    assert sorted(e["line"] for e in job.errors) == [BAD_LINE, DUPLICATE_LINE]
    articles = Article.objects.filter(project=project)
    assert articles.count() == articles.values("external_id").distinct().count() == EXPECTED
    tasks = Task.objects.filter(project=project)
    assert tasks.count() == tasks.values("article").distinct().count() == EXPECTED


@pytest.mark.django_db
def test_a_stalled_running_import_is_resumed_from_its_checkpoint_and_imports_every_row_once(
    new_job, kill_at, project, django_capture_on_commit_callbacks
):
    job = new_job()
    kill_at(3)
    job = _killed_run(job)
    assert (job.status, job.attempts, job.rows_read) == (ImportStatus.RUNNING, 1, 21)  # line 17 is bad
    assert Article.objects.filter(project=project).count() == 20  # the third batch rolled back
    age(job)

    with django_capture_on_commit_callbacks(execute=True):
        assert stalled.imports_resume_stalled() == (1, 0)

    _assert_imported_once(job, project)
    assert job.attempts == 2
    assert job.message == "2 row(s) could not be imported; see the errors."  # no resume note left
    event = AuditEvent.objects.get(action="import.resume")
    assert (event.project_id, event.target_id, event.actor_id) == (project.pk, str(job.pk), None)
    assert event.data == {"from": "running", "attempts": 1, "rows_read": 21}
    assert not (django_settings.MEDIA_ROOT / job.file_path).exists()


@pytest.mark.django_db
def test_a_resumed_import_waits_queued_with_a_note_until_a_worker_takes_it(
    new_job, kill_at, project, client_for, manager, django_capture_on_commit_callbacks
):
    kill_at(1)
    job = _killed_run(new_job())
    age(job)
    with django_capture_on_commit_callbacks(execute=False):  # the message is sent, no worker runs it yet
        assert stalled.imports_resume_stalled() == (1, 0)
    shown = client_for(manager).get(f"/api/v1/projects/{project.pk}/imports/{job.pk}/").json()
    assert (shown["status"], shown["message"], shown["attempts"]) == ("queued", stalls.resumed_message("import"), 1)


@pytest.mark.django_db
def test_a_running_import_with_a_fresh_heartbeat_is_left_alone(new_job, kill_at, django_capture_on_commit_callbacks):
    kill_at(3)
    job = _killed_run(new_job())
    age(job, seconds=django_settings.JOB_STALL_SECONDS - 5)
    assert_sweep_leaves_alone(job, stalled.imports_resume_stalled, django_capture_on_commit_callbacks)
    assert not AuditEvent.objects.filter(action__startswith="import.resume").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("status", [ImportStatus.SUCCEEDED, ImportStatus.FAILED, ImportStatus.CANCELLED])
def test_finished_imports_are_left_alone(new_job, status, django_capture_on_commit_callbacks):
    job = new_job()
    ImportJob.objects.filter(pk=job.pk).update(status=status, attempts=1)
    age(job, seconds=10 * django_settings.JOB_STALL_SECONDS)
    assert_sweep_leaves_alone(job, stalled.imports_resume_stalled, django_capture_on_commit_callbacks)


@pytest.mark.django_db
def test_a_queued_import_whose_message_was_lost_is_sent_again(new_job, project, django_capture_on_commit_callbacks):
    job = new_job()  # created, never sent: as if Redis lost the message
    age(job)

    with django_capture_on_commit_callbacks(execute=True):
        assert stalled.imports_resume_stalled() == (1, 0)

    _assert_imported_once(job, project)
    assert job.attempts == 1
    assert AuditEvent.objects.get(action="import.resume").data == {"from": "queued", "attempts": 0, "rows_read": 0}


@pytest.mark.django_db
def test_a_queued_import_waiting_in_the_outbox_is_not_sent_twice(new_job, django_capture_on_commit_callbacks):
    job = new_job()
    PendingJob.objects.create(name="imports.run", args=[job.pk], error="ConnectionError")
    PendingJob.objects.create(name="imports.run", args=[job.pk + 1000])  # another job's row
    age(job)

    with django_capture_on_commit_callbacks(execute=True) as sent:
        assert stalled.imports_resume_stalled() == (0, 0)
    assert sent == []
    job.refresh_from_db()
    assert job.status == ImportStatus.QUEUED


@pytest.mark.django_db
def test_an_import_that_keeps_losing_its_worker_is_given_up_with_a_message(
    new_job, kill_at, project, client_for, manager, settings, django_capture_on_commit_callbacks
):
    settings.JOB_MAX_RESUMES = 2
    kill_at(1)  # every run dies in its first batch
    job = _killed_run(new_job())
    for attempt in (2, 3):
        age(job)
        with django_capture_on_commit_callbacks() as sent:
            assert stalled.imports_resume_stalled() == (1, 0)
        kill_at(1)
        with pytest.raises(Killed):
            sent[0]()  # the worker runs the resent job, and dies again
        job.refresh_from_db()
        assert (job.status, job.attempts) == (ImportStatus.RUNNING, attempt)

    age(job)
    with django_capture_on_commit_callbacks(execute=True) as sent:
        assert stalled.imports_resume_stalled() == (0, 1)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and job.finished_at is not None
    assert job.message == stalls.gave_up_message("import", 3)
    assert job.message.startswith("Given up: the import was started 3 times")
    assert not (django_settings.MEDIA_ROOT / job.file_path).exists()
    assert AuditEvent.objects.get(action="import.give_up").data == {"attempts": 3, "rows_read": 0}
    shown = client_for(manager).get(f"/api/v1/projects/{project.pk}/imports/{job.pk}/").json()
    assert (shown["status"], shown["message"]) == ("failed", job.message)

    age(job)  # a failed job is never picked up again
    with django_capture_on_commit_callbacks(execute=True) as sent:
        assert stalled.imports_resume_stalled() == (0, 0)


@pytest.mark.django_db
def test_a_redelivered_message_leaves_a_live_run_alone_and_takes_over_a_stalled_one(new_job, kill_at, project):
    kill_at(3)
    job = _killed_run(new_job())

    again = services.import_run(job=ImportJob.objects.get(pk=job.pk))  # heartbeat fresh: the run may be alive
    assert (again.status, again.attempts, again.rows_read) == (ImportStatus.RUNNING, 1, 21)

    age(job)
    done = services.import_run(job=ImportJob.objects.get(pk=job.pk))  # stale: the run is dead
    assert done.attempts == 2
    _assert_imported_once(done, project)


@pytest.mark.django_db
def test_a_run_whose_job_was_taken_over_stops_at_its_next_heartbeat(new_job):
    job = new_job()
    assert services._claim(job) == 1
    progress = services._Progress(ImportJob.objects.get(pk=job.pk), resume=False, attempt=1)
    age(job)
    assert progress.beat()
    job.refresh_from_db()
    assert timezone.now() - job.updated_at < timedelta(seconds=django_settings.JOB_STALL_SECONDS)

    age(job)
    assert services._claim(job) == 2  # a newer run takes the stalled job over
    assert not progress.beat()
    assert not progress.save()


@pytest.mark.postgres
@pytest.mark.skipif(
    not django_settings.IS_POSTGRES, reason="needs PostgreSQL: two runs on two connections, one waiting on the other"
)
def test_a_sweep_while_the_run_is_alive_imports_every_row_once(transactional_db, project, manager, monkeypatch):
    path = services.new_upload_path("news.jsonl")
    _write(path)
    job = services.import_create(
        project=project, actor=manager, path=path, file_name="news.jsonl", options={"batch_size": BATCH}
    )
    paused, release = threading.Event(), threading.Event()
    hits = []

    def pause_third_batch(name: str) -> None:
        hits.append(name)
        if len(hits) == 3:  # the first run, inside its third batch's transaction, rows written
            paused.set()
            release.wait(timeout=60)

    monkeypatch.setattr(services, "fault_point", pause_third_batch)
    outcome: dict = {}

    def in_thread(name, work) -> threading.Thread:
        def run() -> None:
            try:
                outcome[name] = work()
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                outcome[name] = exc
            finally:
                connection.close()

        thread = threading.Thread(target=run, name=name)
        thread.start()
        return thread

    first = in_thread("first", lambda: services.import_run(job=ImportJob.objects.get(pk=job.pk)).status)
    assert paused.wait(timeout=60)
    age(job)  # the live run looks stalled (a slow batch, say)
    # The sweep requeues it and, Celery being eager here, runs the resent job at once: it claims
    # attempt 2, resumes after batch 2 and waits on the first run's uncommitted rows.
    sweep = in_thread("sweep", stalled.imports_resume_stalled)
    wait_for(lambda: ImportJob.objects.get(pk=job.pk).attempts == 2, timeout=60, what="the resumed run's claim")
    release.set()  # the first run tries to save its batch: it is no longer the job's run
    first.join(timeout=120)
    sweep.join(timeout=120)

    assert outcome["sweep"] == (1, 0), outcome
    assert outcome["first"] in (ImportStatus.RUNNING, ImportStatus.SUCCEEDED), outcome  # stopped, superseded
    _assert_imported_once(ImportJob.objects.get(pk=job.pk), project)
    assert ImportJob.objects.get(pk=job.pk).attempts == 2
