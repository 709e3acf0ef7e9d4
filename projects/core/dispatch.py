"""Send Celery jobs so that a lost broker loses no work and fails no request.

``enqueue(job, *args)`` sends after the current transaction commits. When Redis cannot be reached
the job is written to ``PendingJob`` (the database outbox) instead, a warning is logged and the
optional ``on_deferred`` callback records it on the job's own row (so the API and pages say the job
waits for the queue); the request still succeeds. ``pending_jobs_dispatch`` (the
``core.dispatch_pending`` job: Celery beat every ``JOB_REDISPATCH_SECONDS``, and every worker at
start-up) sends the rows once Redis is back. After a failed send, this process does not try the
broker again for ``BROKER_RETRY_AFTER`` seconds, so a burst of submits during an outage is not
slowed down by one connection attempt each.

Eager mode (no ``REDIS_URL``) runs jobs in-process as before; their errors propagate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from celery import Task as CeleryJob
from django.db import transaction
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from annotator.celery import app as celery_app
from projects.core.models import PendingJob

logger = logging.getLogger(__name__)

QUEUE_WAITING_MESSAGE = (
    "Waiting for the job queue: Redis could not be reached when this job was started. "
    "The job is saved and starts by itself when the queue is back."
)
BROKER_RETRY_AFTER = 5.0
BROKER_ERRORS = (OperationalError, RedisError, OSError)
# Fail fast: one quick retry, not Celery's default three with a 4 s connection timeout each.
RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}

_broker_down_until = 0.0


def enqueue(
    job: CeleryJob,
    *args,
    queue: str | None = None,
    countdown: float | None = None,
    on_deferred: Callable[[], None] | None = None,
) -> None:
    """Send ``job(*args)`` once the current transaction commits; keep it in the outbox if Redis is down."""
    transaction.on_commit(lambda: send(job, *args, queue=queue, countdown=countdown, on_deferred=on_deferred))


def send(
    job: CeleryJob,
    *args,
    queue: str | None = None,
    countdown: float | None = None,
    on_deferred: Callable[[], None] | None = None,
) -> bool:
    """Send now; False when the broker was unreachable and the job went to the outbox."""
    global _broker_down_until
    options = {"queue": queue} if countdown is None else {"queue": queue, "countdown": countdown}
    if celery_app.conf.task_always_eager:
        job.apply_async(args=list(args), **options)
        return True
    error = f"the broker was unreachable less than {BROKER_RETRY_AFTER:.0f} s ago"
    if time.monotonic() >= _broker_down_until:
        try:
            job.apply_async(args=list(args), retry_policy=RETRY_POLICY, **options)
            return True
        except BROKER_ERRORS as exc:
            _broker_down_until = time.monotonic() + BROKER_RETRY_AFTER
            error = f"{type(exc).__name__}: {exc}"[:2000]
    PendingJob.objects.create(name=job.name, args=list(args), queue=queue or "", error=error)
    logger.warning("broker unreachable; %s%r kept in the outbox (%s)", job.name, tuple(args), error)
    if on_deferred is not None:
        on_deferred()
    return False


def pending_jobs_dispatch(*, limit: int = 1000) -> int:
    """Send outbox rows, oldest first; stop at the first failure (the broker is still down)."""
    global _broker_down_until
    sent = 0
    for row in PendingJob.objects.order_by("id")[:limit]:
        job = celery_app.tasks.get(row.name)
        if job is None:
            logger.error("outbox: no job named %r; dropping %r", row.name, row.args)
            row.delete()
            continue
        try:
            job.apply_async(args=row.args, queue=row.queue or None, retry_policy=RETRY_POLICY)
        except BROKER_ERRORS as exc:
            PendingJob.objects.filter(pk=row.pk).update(error=f"{type(exc).__name__}: {exc}"[:2000])
            break
        row.delete()
        sent += 1
    if sent:
        _broker_down_until = 0.0
        logger.info("outbox: sent %d waiting job(s)", sent)
    return sent
