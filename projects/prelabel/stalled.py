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
    return stalls.sweep(PrelabelRun, ACTIVE_STATUSES, jobs.prelabel_run_plan_job.name, _resume, limit=limit)


def _resume(run: PrelabelRun) -> tuple[int, int]:
    # Compare-and-set on the heartbeat seen; the new value also spaces the next resume of this run
    # by JOB_STALL_SECONDS.
    if not stalls.unchanged(run).update(updated_at=timezone.now()):
        return 0, 0
    dead = _give_up_chunks(run)
    data = {"from": run.status, "chunks_given_up": [chunk.index for chunk in dead]}
    audit_log(actor=None, action="prelabel.resume", project=run.project, target=run, data=data)
    if not PrelabelRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).exists():
        return 0, len(dead)
    logger.warning("pre-label run %s: no progress since %s (%s); sent again", run.pk, run.updated_at, data)
    services.prelabel_enqueue(jobs.prelabel_run_plan_job, run.pk)
    return 1, len(dead)


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
