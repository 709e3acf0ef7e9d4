"""Celery entry point for imports."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from projects.imports import services
from projects.imports.models import ImportJob


@shared_task(name="imports.run", acks_late=True, reject_on_worker_lost=True)
def import_run_job(job_id: int) -> str:
    job = ImportJob.objects.select_related("project").filter(pk=job_id).first()
    if job is None:
        return "missing"
    return services.import_run(job=job).status


def import_enqueue(job_id: int) -> None:
    """Run the import after the current transaction commits (in-process when Celery is eager)."""
    transaction.on_commit(lambda: import_run_job.delay(job_id))
