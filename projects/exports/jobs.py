"""Celery jobs: build an export snapshot, deliver a webhook call, resume stalled builds (beat).
All take ids and are idempotent."""

from __future__ import annotations

from celery import shared_task

from projects.core import dispatch
from projects.exports import services, stalled, webhooks
from projects.exports.models import ExportJob, ExportStatus


@shared_task(name="exports.build", acks_late=True, reject_on_worker_lost=True)
def export_build_job(job_id: int) -> None:
    # The claim (queued → running by conditional update) makes a redelivered message a no-op.
    services.export_build(job_id=job_id)


def export_enqueue(job: ExportJob) -> None:
    """Build the snapshot after the current transaction commits; with Redis unreachable the job
    waits in the outbox and its ``error`` says so."""

    def waiting() -> None:
        ExportJob.objects.filter(pk=job.pk, status=ExportStatus.QUEUED).update(error=dispatch.QUEUE_WAITING_MESSAGE)
        job.error = dispatch.QUEUE_WAITING_MESSAGE

    dispatch.enqueue(export_build_job, job.pk, on_deferred=waiting)


@shared_task(name="exports.resume_stalled", acks_late=True)
def exports_resume_stalled_job() -> tuple[int, int]:
    return stalled.exports_resume_stalled()


@shared_task(
    bind=True,
    name="exports.deliver_webhook",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # webhook_deliver stops retrying after webhooks.MAX_ATTEMPTS
)
def webhook_deliver_job(self, delivery_id: int) -> None:
    retry_in = webhooks.webhook_deliver(delivery_id=delivery_id)
    if retry_in is not None:
        # Exponential backoff: 10 s, 20 s, 40 s, ... (webhooks.backoff_seconds).
        raise self.retry(countdown=retry_in)
