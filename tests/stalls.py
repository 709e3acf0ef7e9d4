"""Steps shared by the stalled-job sweep tests of imports, exports and pre-label runs."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone


def age(job, seconds: int | None = None) -> None:
    """Move the job's heartbeat (``updated_at``) back: just past the stall limit by default."""
    seconds = seconds if seconds is not None else settings.JOB_STALL_SECONDS + 1
    type(job).objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def assert_sweep_leaves_alone(job, sweep, capture_on_commit_callbacks) -> dict:
    """Run ``sweep`` (an app's ``resume_stalled``): it resumes and gives up nothing, sends no
    message, and the job's row is as it was. Returns that row."""
    model = type(job)
    before = model.objects.values().get(pk=job.pk)
    with capture_on_commit_callbacks(execute=True) as sent:
        assert sweep() == (0, 0)
    assert sent == []
    assert model.objects.values().get(pk=job.pk) == before
    return before
