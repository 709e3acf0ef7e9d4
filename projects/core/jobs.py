"""Celery jobs of the core app: sending the jobs that waited for the broker."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.db import connection

from projects.core import dispatch


@shared_task(name="core.dispatch_pending", acks_late=True)
def pending_jobs_dispatch_job() -> int:
    return dispatch.pending_jobs_dispatch()


@worker_ready.connect
def _dispatch_on_start(**kwargs) -> None:
    # A worker that starts after an outage sends what waited, without waiting for beat.
    dispatch.pending_jobs_dispatch()
    connection.close()  # opened in the parent: pool children must not share it
