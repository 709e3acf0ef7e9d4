"""Celery entry points for imports: the run, and the beat sweep that resumes stalled runs."""

from __future__ import annotations

from celery import shared_task

from projects.core import dispatch
from projects.imports import services, stalled
from projects.imports.models import ImportJob, ImportStatus


@shared_task(name="imports.run", acks_late=True, reject_on_worker_lost=True)
def import_run_job(job_id: int) -> str:
    job = ImportJob.objects.select_related("project").filter(pk=job_id).first()
    if job is None:
        return "missing"
    return services.import_run(job=job).status


def import_enqueue(job_id: int) -> None:
    """Run the import after the current transaction commits (in-process when Celery is eager).

    With Redis unreachable the job waits in the outbox and its message says so.
    """

    def waiting() -> None:
        ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(message=dispatch.QUEUE_WAITING_MESSAGE)

    dispatch.enqueue(import_run_job, job_id, on_deferred=waiting)


@shared_task(name="imports.resume_stalled", acks_late=True)
def imports_resume_stalled_job() -> tuple[int, int]:
    return stalled.imports_resume_stalled()
