"""Celery jobs: build an export snapshot, deliver a webhook call. Both take ids and are idempotent."""

from __future__ import annotations

from celery import shared_task

from projects.exports import services, webhooks


@shared_task(name="exports.build", acks_late=True, reject_on_worker_lost=True)
def export_build_job(job_id: int) -> None:
    # The claim (queued → running by conditional update) makes a redelivered message a no-op.
    services.export_build(job_id=job_id)


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
