"""The one Celery app. Jobs live in each domain app's ``jobs.py``."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")

app = Celery("annotator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(related_name="jobs")


@task_prerun.connect
@task_postrun.connect
def close_old_connections(task=None, **kwargs) -> None:
    """Between jobs, drop a database connection that is broken or older than CONN_MAX_AGE
    (what Django does between requests); keep a healthy one for the next job."""
    if task is not None and getattr(task.request, "is_eager", False):
        return  # an eager job runs inside its caller's transaction
    from django.db import close_old_connections as close

    close()
