"""Celery jobs for quality: the debounced recompute and the periodic sweep."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from projects.quality import services


def recompute_delay() -> int:
    return int(getattr(settings, "QUALITY_RECOMPUTE_DELAY", 30))


@shared_task(name="quality.recompute", acks_late=True, reject_on_worker_lost=True)
def quality_recompute_job(project_id: int, force: bool = False) -> str:
    """Recompute a project's figures; idempotent (a clean project is left alone)."""
    status = services.quality_recompute(project_id=project_id, force=force)
    if status == "busy" and not settings.CELERY_TASK_ALWAYS_EAGER:
        # Another worker is computing; come back once it is done rather than drop the change.
        quality_recompute_job.apply_async((project_id,), countdown=recompute_delay())
    return status


@shared_task(name="quality.sweep", acks_late=True)
def quality_sweep_job() -> int:
    """Enqueue a recompute for every stale project (catches lost or skipped messages)."""
    project_ids = services.projects_needing_recompute()
    for project_id in project_ids:
        quality_recompute_job.delay(project_id)
    return len(project_ids)


def on_event(name: str, project_id: int, data: dict) -> None:
    """Domain-event listener: a submission makes the figures stale; recompute after a delay.

    Without a broker (eager Celery: tests, ``./run.sh`` without Redis) this only marks the project
    stale, so a submission never waits for a full recompute; the dashboard offers "Recompute now".
    """
    # ``task.completed`` always comes with the ``annotation.submitted`` that completed the task.
    if name not in ("annotation.submitted", "annotation.reviewed"):
        return
    delay = recompute_delay()
    schedule = services.quality_mark_dirty(project_id=project_id, delay_seconds=delay)
    if schedule and not settings.CELERY_TASK_ALWAYS_EAGER:
        quality_recompute_job.apply_async((project_id,), countdown=delay)
