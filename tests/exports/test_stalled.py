"""The stalled-export sweep (``exports.resume_stalled``): a build whose worker was lost is sent
again and built as a new attempt with the right checksum; a live build, a finished job or a job
waiting in the outbox is left alone; a build that keeps losing its worker is given up with a
clear error; an older attempt still alive stops at its next heartbeat and keeps no file.

A lost worker is simulated in-process: the fault point half-way through writing raises
``Killed`` (a ``BaseException``, so nothing in the job catches it), and the job stays ``running``.
"""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage

from projects.core import stalls
from projects.core.models import AuditEvent, PendingJob
from projects.exports import services, stalled
from projects.exports.filters import ExportOptions
from projects.exports.models import ExportJob, ExportStatus
from tests.stalls import age, assert_sweep_leaves_alone

pytestmark = pytest.mark.django_db


class Killed(BaseException):
    """Stands for SIGKILL: not an ``Exception``, so the build's own error handling never sees it."""


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def new_job(dataset, manager):
    def create() -> ExportJob:
        job, created = services.export_snapshot_start(
            project=dataset.project, actor=manager, options=ExportOptions(format="jsonl")
        )
        assert created
        return job

    return create


def _killed_build(job: ExportJob, monkeypatch) -> ExportJob:
    def kill(name: str) -> None:
        raise Killed(name)

    monkeypatch.setattr(services, "fault_point", kill)
    with pytest.raises(Killed):
        services.export_build(job_id=job.pk)
    monkeypatch.setattr(services, "fault_point", lambda name: None)
    job.refresh_from_db()
    return job


def _folder(job: ExportJob) -> str:
    return f"exports/project-{job.project_id}/{job.pk}"


def test_a_stalled_build_is_sent_again_and_built_as_a_new_attempt(
    new_job, monkeypatch, dataset, django_capture_on_commit_callbacks
):
    job = _killed_build(new_job(), monkeypatch)
    assert (job.status, job.attempts, job.file) == (ExportStatus.RUNNING, 1, "")
    age(job)

    with django_capture_on_commit_callbacks(execute=True):
        assert stalled.exports_resume_stalled() == (1, 0)

    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == (ExportStatus.DONE, 2, "")
    assert job.file == f"{_folder(job)}/2/data.jsonl"
    assert not default_storage.exists(f"{_folder(job)}/data.jsonl")  # the killed attempt kept nothing
    with default_storage.open(job.file, "rb") as fh:
        stored = fh.read()
    fresh = b"".join(services.export_stream(project=dataset.project, options=services.options_of(job)))
    assert hashlib.sha256(stored).hexdigest() == job.sha256 == hashlib.sha256(fresh).hexdigest()
    event = AuditEvent.objects.get(action="export.resume")
    assert (event.target_id, event.actor_id, event.data) == (str(job.pk), None, {"from": "running", "attempts": 1})


def test_a_resumed_export_shows_queued_with_a_note(
    new_job, monkeypatch, dataset, client_for, manager, django_capture_on_commit_callbacks
):
    job = _killed_build(new_job(), monkeypatch)
    age(job)
    with django_capture_on_commit_callbacks(execute=False):
        assert stalled.exports_resume_stalled() == (1, 0)
    shown = client_for(manager).get(f"/api/v1/projects/{dataset.project.pk}/exports/{job.pk}/").json()
    assert (shown["status"], shown["error"], shown["download_url"]) == (
        "queued",
        stalls.resumed_message("export"),
        None,
    )
    assert shown["attempts"] == 1


def test_a_running_build_with_a_fresh_heartbeat_is_left_alone(new_job, monkeypatch, django_capture_on_commit_callbacks):
    job = _killed_build(new_job(), monkeypatch)
    age(job, seconds=django_settings.JOB_STALL_SECONDS - 5)
    before = assert_sweep_leaves_alone(job, stalled.exports_resume_stalled, django_capture_on_commit_callbacks)
    assert services.export_build(job_id=job.pk) is None  # a redelivered message leaves it alone too
    assert ExportJob.objects.values().get(pk=job.pk) == before


@pytest.mark.parametrize("status", [ExportStatus.DONE, ExportStatus.FAILED])
def test_finished_exports_are_left_alone(new_job, status, django_capture_on_commit_callbacks):
    job = new_job()
    ExportJob.objects.filter(pk=job.pk).update(status=status, attempts=1)
    age(job, seconds=10 * django_settings.JOB_STALL_SECONDS)
    assert_sweep_leaves_alone(job, stalled.exports_resume_stalled, django_capture_on_commit_callbacks)


def test_a_queued_export_whose_message_was_lost_is_sent_again(new_job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # the first message is lost
        job = new_job()
    age(job)
    with django_capture_on_commit_callbacks(execute=True):
        assert stalled.exports_resume_stalled() == (1, 0)
    job.refresh_from_db()
    assert (job.status, job.attempts) == (ExportStatus.DONE, 1)
    assert AuditEvent.objects.get(action="export.resume").data == {"from": "queued", "attempts": 0}


def test_a_queued_export_waiting_in_the_outbox_is_not_sent_twice(new_job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = new_job()
    PendingJob.objects.create(name="exports.build", args=[job.pk])
    age(job)
    with django_capture_on_commit_callbacks(execute=True) as sent:
        assert stalled.exports_resume_stalled() == (0, 0)
    assert sent == []
    assert ExportJob.objects.get(pk=job.pk).status == ExportStatus.QUEUED


def test_a_build_that_keeps_losing_its_worker_is_given_up_with_an_error(
    new_job, monkeypatch, dataset, client_for, manager, settings, django_capture_on_commit_callbacks
):
    settings.JOB_MAX_RESUMES = 1
    job = _killed_build(new_job(), monkeypatch)
    age(job)
    with django_capture_on_commit_callbacks() as sent:
        assert stalled.exports_resume_stalled() == (1, 0)
    job = _killed_build(job, monkeypatch)  # the resent build dies too
    assert job.attempts == 2

    age(job)
    with django_capture_on_commit_callbacks(execute=True) as sent:
        assert stalled.exports_resume_stalled() == (0, 1)
    assert sent == []  # nothing sent again
    job.refresh_from_db()
    assert (job.status, job.error) == (ExportStatus.FAILED, stalls.gave_up_message("export", 2))
    assert job.finished_at is not None
    assert AuditEvent.objects.get(action="export.give_up").data == {"attempts": 2}
    shown = client_for(manager).get(f"/api/v1/projects/{dataset.project.pk}/exports/{job.pk}/").json()
    assert (shown["status"], shown["error"], shown["download_url"]) == ("failed", job.error, None)
    # The same export can be started again: the failed job no longer holds its parameters.
    again, created = services.export_snapshot_start(
        project=dataset.project, actor=manager, options=ExportOptions(format="jsonl")
    )
    assert created and again.pk != job.pk


def test_an_older_attempt_still_alive_stops_at_its_heartbeat_and_keeps_no_file(new_job, monkeypatch):
    job = new_job()
    monkeypatch.setattr(stalls.Pulse, "due", lambda self: True)

    def taken_over(name: str) -> None:
        # While attempt 1 writes, its job looks stalled and a resent message claims attempt 2.
        age(job)
        assert services._claim(job.pk) == 2

    monkeypatch.setattr(services, "fault_point", taken_over)
    assert services.export_build(job_id=job.pk) is None
    job.refresh_from_db()
    assert (job.status, job.attempts, job.file, job.sha256) == (ExportStatus.RUNNING, 2, "", "")
    assert not default_storage.exists(_folder(job))

    monkeypatch.setattr(services, "fault_point", lambda name: None)
    age(job)
    built = services.export_build(job_id=job.pk)
    assert (built.status, built.attempts, built.file) == (ExportStatus.DONE, 3, f"{_folder(job)}/3/data.jsonl")
