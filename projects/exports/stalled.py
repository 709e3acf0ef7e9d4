"""Snapshot exports whose build stalled (its worker was lost, or its message): sent again, or given up.

See ``projects.core.stalls`` for the rules; ``exports.resume_stalled`` (beat) calls this.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from projects.core import stalls
from projects.core.services import audit_log
from projects.exports import jobs
from projects.exports.models import ACTIVE_EXPORT_STATUSES, ExportJob, ExportStatus

logger = logging.getLogger(__name__)


def exports_resume_stalled(*, limit: int = 100) -> tuple[int, int]:
    """Send again every active snapshot export with no progress for ``JOB_STALL_SECONDS``; fail
    those already started more than ``1 + JOB_MAX_RESUMES`` times. Returns (resumed, given up)."""
    return stalls.sweep(ExportJob, ACTIVE_EXPORT_STATUSES, jobs.export_build_job.name, _resume_or_give_up, limit=limit)


def _resume_or_give_up(job: ExportJob) -> tuple[int, int]:
    if job.status == ExportStatus.RUNNING and not stalls.may_resume(job.attempts):
        return 0, int(_give_up(job))
    return int(_resume(job)), 0


def _resume(job: ExportJob) -> bool:
    was = job.status
    values = {"status": ExportStatus.QUEUED, "updated_at": timezone.now()}
    if was == ExportStatus.RUNNING:
        values["error"] = stalls.resumed_message("export")
    if not stalls.unchanged(job).update(**values):
        return False
    data = {"from": was, "attempts": job.attempts}
    audit_log(actor=None, action="export.resume", project=job.project, target=job, data=data)
    logger.warning("export %s: no progress since %s (%s); sent again", job.pk, job.updated_at.isoformat(), data)
    jobs.export_enqueue(job)
    return True


def _give_up(job: ExportJob) -> bool:
    now = timezone.now()
    error = stalls.gave_up_message("export", job.attempts)
    if not stalls.unchanged(job).update(status=ExportStatus.FAILED, error=error, finished_at=now, updated_at=now):
        return False
    audit_log(actor=None, action="export.give_up", project=job.project, target=job, data={"attempts": job.attempts})
    logger.error("export %s: given up after %d builds that stopped without finishing", job.pk, job.attempts)
    return True
