"""Periodic queue maintenance."""

from celery import shared_task

from projects.assignment.services import leases_expire


@shared_task(name="assignment.expire_leases")
def leases_expire_job() -> int:
    return leases_expire()
