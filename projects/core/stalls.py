"""Stalled jobs: when a run counts as dead, how often a live one says it is alive, when to give up.

Imports, snapshot exports and pre-label runs keep ``updated_at`` on their row fresh while they
work: every committed batch, finished chunk or written block, and at least every
``pulse_seconds()`` while a run waits on something slow. A ``running`` job whose ``updated_at``
is older than ``JOB_STALL_SECONDS`` has lost its worker (SIGKILL, out of memory, a machine gone)
or its message. Each app's ``<app>.resume_stalled`` beat job (every ``JOB_STALL_CHECK_SECONDS``)
puts such a job back to ``queued`` and sends it again through ``dispatch`` (so a lost Redis only
delays it, in the outbox); a ``queued`` job that waited that long is sent again too (a duplicate
message finds the job taken and does nothing). Only the newest run of a job may save progress, so
a run that was in fact alive stops at its next save and nothing is written or counted twice.

A job started more than ``1 + JOB_MAX_RESUMES`` times that stalls again is failed with
``gave_up_message``: a job that kills its worker every time does not loop forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from projects.core.models import PendingJob

MAX_PULSE_SECONDS = 30.0


def stall_seconds() -> int:
    return int(settings.JOB_STALL_SECONDS)


def stalled_before() -> datetime:
    """Runs whose ``updated_at`` is older than this count as stalled."""
    return timezone.now() - timedelta(seconds=stall_seconds())


def pulse_seconds() -> float:
    """How often a live run refreshes ``updated_at`` at least: well inside the stall limit."""
    return min(MAX_PULSE_SECONDS, stall_seconds() / 5)


class Pulse:
    """``due()`` is true once every ``pulse_seconds()``: when a run should write its heartbeat."""

    def __init__(self) -> None:
        self.interval = pulse_seconds()
        self.next = time.monotonic() + self.interval

    def due(self) -> bool:
        now = time.monotonic()
        if now < self.next:
            return False
        self.next = now + self.interval
        return True


def may_resume(attempts: int) -> bool:
    """A stalled job started ``attempts`` times is resumed once more, or given up."""
    return attempts <= settings.JOB_MAX_RESUMES


def waits_in_outbox(job_name: str, job_id: int) -> bool:
    """The job's message waits in the database outbox (Redis was down): it is not lost."""
    return PendingJob.objects.filter(name=job_name, args=[job_id]).exists()


def resumed_message(what: str) -> str:
    return (
        f"Resumed automatically: the {what} made no progress for {stall_seconds()} s (its worker was "
        "probably lost), so it was sent to the job queue again."
    )


def gave_up_message(what: str, attempts: int) -> str:
    return (
        f"Given up: the {what} was started {attempts} times and each run stopped without finishing "
        f"(no progress for {stall_seconds()} s; the worker was lost, for example killed for using too "
        "much memory). Check the worker logs, then start it again."
    )


def unchanged(row: models.Model) -> models.QuerySet:
    """The job's row while it still has the status and heartbeat a sweep read: update through it
    to compare and set (SQLite takes no row lock; a run that wrote its heartbeat, or finished,
    since the read is alive and is left alone)."""
    return type(row).objects.filter(pk=row.pk, status=row.status, updated_at=row.updated_at)


def sweep(
    model: type[models.Model],
    statuses: Iterable[str],
    job_name: str,
    handle: Callable[[models.Model], tuple[int, int]],
    *,
    limit: int,
) -> tuple[int, int]:
    """Call ``handle(row)`` for each row of ``model`` in ``statuses`` whose heartbeat
    (``updated_at``) is stale, oldest first, at most ``limit``; returns the sums of what it returned
    (resumed, given up).

    Each row is handled in its own transaction, locked: a row locked already belongs to a live run
    (an all_or_nothing import holds its row until it commits, so its heartbeat is not visible
    meanwhile) and is skipped, as is one whose message waits in the outbox (not lost). SQLite takes
    no row lock, so ``handle`` still compares and sets on the ``updated_at`` it was given
    (``unchanged``).
    """
    stale = model.objects.filter(status__in=statuses, updated_at__lt=stalled_before())
    resumed = given_up = 0
    for pk in stale.order_by("updated_at").values_list("pk", flat=True)[:limit]:
        with transaction.atomic():
            row = stale.select_for_update(skip_locked=True).filter(pk=pk).first()
            if row is None or waits_in_outbox(job_name, row.pk):
                continue
            done, dropped = handle(row)
            resumed += done
            given_up += dropped
    return resumed, given_up
