"""Imports whose run stalled (its worker was lost, or its message): sent again, or given up.

See ``projects.core.stalls`` for the rules; ``imports.resume_stalled`` (beat) calls this.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from projects.core import events, stalls
from projects.core.services import audit_log
from projects.imports import jobs
from projects.imports.models import ImportJob, ImportStatus
from projects.imports.services import discard_upload

logger = logging.getLogger(__name__)

ACTIVE = (ImportStatus.QUEUED, ImportStatus.RUNNING)


def imports_resume_stalled(*, limit: int = 100) -> tuple[int, int]:
    """Send again every active import with no progress for ``JOB_STALL_SECONDS``; fail those
    already started more than ``1 + JOB_MAX_RESUMES`` times. Returns (resumed, given up)."""
    return stalls.sweep(ImportJob, ACTIVE, jobs.import_run_job.name, _resume_or_give_up, limit=limit)


def _resume_or_give_up(job: ImportJob) -> tuple[int, int]:
    if job.status == ImportStatus.RUNNING and not stalls.may_resume(job.attempts):
        return 0, int(_give_up(job))
    return int(_resume(job)), 0


def _resume(job: ImportJob) -> bool:
    was = job.status
    values = {"status": ImportStatus.QUEUED, "updated_at": timezone.now()}
    if was == ImportStatus.RUNNING:
        values["message"] = stalls.resumed_message("import")
    if not stalls.unchanged(job).update(**values):
        return False
    data = {"from": was, "attempts": job.attempts, "rows_read": job.rows_read}
    audit_log(actor=None, action="import.resume", project=job.project, target=job, data=data)
    logger.warning("import %s: no progress since %s (%s); sent again", job.pk, job.updated_at.isoformat(), data)
    jobs.import_enqueue(job.pk)
    return True


def _give_up(job: ImportJob) -> bool:
    message = stalls.gave_up_message("import", job.attempts)
    now = timezone.now()
    if not stalls.unchanged(job).update(status=ImportStatus.FAILED, message=message, finished_at=now, updated_at=now):
        return False
    data = {"attempts": job.attempts, "rows_read": job.rows_read}
    audit_log(actor=None, action="import.give_up", project=job.project, target=job, data=data)
    logger.error("import %s: given up after %d runs that stopped without finishing", job.pk, job.attempts)
    if job.file_path:
        path = Path(settings.MEDIA_ROOT) / job.file_path
        transaction.on_commit(lambda: discard_upload(path))
    events.emit(
        "import.finished",
        project_id=job.project_id,
        data={"import_id": job.pk, "status": ImportStatus.FAILED, "rows_created": job.rows_created},
    )
    return True
