"""Pre-label runs that stalled: their unfinished chunks sent again, or given up.

A run fans out: ``prelabel.plan`` makes the chunks and sends one message per chunk; a chunk
stores its predictions and flips to done once, so a duplicate message does nothing. The run's
``updated_at`` is its heartbeat: each chunk's finish (and start, if the heartbeat is older than
``stalls.pulse_seconds()``), and every such interval while a chunk predicts. An active run with no
heartbeat for ``JOB_STALL_SECONDS`` has chunks whose worker or message was lost (or that wait
behind another run's chunks: then the copies sent again find them done).
``prelabel.resume_stalled`` (beat) sends ``prelabel.plan`` again, which sends every chunk not
done yet. A chunk started more than ``1 + JOB_MAX_RESUMES`` times is given up first: its tasks
are counted failed with ``stalls.gave_up_message``, so the run can finish.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from projects.core import stalls
from projects.core.services import audit_log
from projects.prelabel import jobs, services
from projects.prelabel.models import ACTIVE_STATUSES, ChunkStatus, PrelabelRun

logger = logging.getLogger(__name__)


def prelabel_runs_resume_stalled(*, limit: int = 100) -> tuple[int, int]:
    """Send again the unfinished chunks of every active run with no heartbeat for
    ``JOB_STALL_SECONDS``, giving up the chunks started too often. Returns (runs sent again,
    chunks given up)."""
    stale = PrelabelRun.objects.filter(status__in=ACTIVE_STATUSES, updated_at__lt=stalls.stalled_before())
    resumed = given_up = 0
    for run_id in stale.order_by("updated_at").values_list("pk", flat=True)[:limit]:
        with transaction.atomic():
            run = stale.select_for_update(skip_locked=True).filter(pk=run_id).first()
            if run is None or stalls.waits_in_outbox(jobs.prelabel_run_plan_job.name, run.pk):
                continue
            # Compare-and-set on the heartbeat seen (SQLite takes no row lock above); the new
            # value also spaces the next resume of this run by JOB_STALL_SECONDS.
            seen = PrelabelRun.objects.filter(pk=run.pk, status=run.status, updated_at=run.updated_at)
            if not seen.update(updated_at=timezone.now()):
                continue
            dead = _give_up_chunks(run)
            given_up += len(dead)
            data = {"from": run.status, "chunks_given_up": [chunk.index for chunk in dead]}
            audit_log(actor=None, action="prelabel.resume", project=run.project, target=run, data=data)
            if PrelabelRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).exists():
                logger.warning("pre-label run %s: no progress since %s (%s); sent again", run.pk, run.updated_at, data)
                services.prelabel_enqueue(jobs.prelabel_run_plan_job, run.pk)
                resumed += 1
    return resumed, given_up


def _give_up_chunks(run: PrelabelRun) -> list:
    """Count the tasks of the chunks started more than ``1 + JOB_MAX_RESUMES`` times as failed."""
    dead = []
    for chunk in run.chunks.filter(status=ChunkStatus.PENDING, attempts__gt=settings.JOB_MAX_RESUMES):
        chunk.run = run
        message = stalls.gave_up_message("chunk", chunk.attempts)
        errors = [{"task_id": task_id, "message": message} for task_id in chunk.task_ids]
        if services.chunk_results_store(chunk=chunk, outputs=[], errors=errors):
            dead.append(chunk)
            logger.error("pre-label run %s: chunk %s given up after %d starts", run.pk, chunk.index, chunk.attempts)
    if dead:
        PrelabelRun.objects.filter(pk=run.pk).update(message=stalls.gave_up_message("chunk", dead[0].attempts))
    return dead
