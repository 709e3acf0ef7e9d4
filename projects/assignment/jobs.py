"""Periodic queue maintenance (scheduled by CELERY_BEAT_SCHEDULE in settings)."""

from celery import shared_task

from projects.assignment.services import leases_expire


@shared_task(name="assignment.expire_leases", acks_late=True, ignore_result=True)
def leases_expire_job() -> int:
    """Return expired leases to the queue. Idempotent: a second run finds nothing to expire."""
    return leases_expire()


@shared_task(name="search.index_articles", acks_late=True, ignore_result=True)
def search_index_job(project_id: int | None = None) -> int:
    """Fill the full-text document of articles written without one (after imports; beat sweeps too)."""
    from projects.assignment.search import index_pending

    return index_pending(project_id=project_id)
