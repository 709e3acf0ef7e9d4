"""Celery jobs for pre-labeling. Each takes ids and is idempotent, so it runs with acks_late and
is rejected (redelivered) when its worker dies; ``prelabel.resume_stalled`` (beat) sends again
the chunks of runs that stopped making progress."""

from __future__ import annotations

import logging

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import DatabaseError

from projects.core.models import Project
from projects.prelabel import services, stalled, training
from projects.prelabel.labelers import LabelerConfigError
from projects.prelabel.models import Labeler

logger = logging.getLogger(__name__)


@shared_task(name="prelabel.plan", acks_late=True, reject_on_worker_lost=True)
def prelabel_run_plan_job(run_id: int) -> None:
    services.prelabel_run_plan(run_id=run_id)


@shared_task(name="prelabel.chunk", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=5)
def prelabel_chunk_job(self, chunk_id: int) -> str:
    try:
        return services.prelabel_chunk_process(chunk_id=chunk_id)
    except DatabaseError as exc:  # lock waits, lost connections: transient, and the chunk is unchanged
        raise self.retry(exc=exc, countdown=2 ** min(self.request.retries, 5))


@shared_task(name="prelabel.train", acks_late=True, reject_on_worker_lost=True)
def model_train_job(project_id: int, actor_id: int | None = None, labeler_id: int | None = None) -> None:
    project = Project.objects.filter(pk=project_id).first()
    try:
        if project is not None:
            actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
            training.model_train(project=project, actor=actor)
    except LabelerConfigError as exc:
        logger.info("project %s: not trained: %s", project_id, exc)
    finally:
        if labeler_id is not None:
            Labeler.objects.filter(pk=labeler_id).update(training_queued_at=None)


@shared_task(name="prelabel.resume_stalled", acks_late=True)
def prelabel_resume_stalled_job() -> tuple[int, int]:
    return stalled.prelabel_runs_resume_stalled()
