"""Jobs started while the broker is unreachable wait in the database outbox and are sent later;
the rate-limit counters fail open while their cache is down. No Redis needed: the broker and the
cache are made to fail here."""

from __future__ import annotations

from unittest import mock

import pytest
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from annotator.celery import app as celery_app
from projects.core import dispatch, ratelimit
from projects.core.models import PendingJob
from projects.imports.jobs import import_enqueue, import_run_job
from projects.imports.models import ImportJob, ImportStatus
from projects.prelabel import jobs as prelabel_jobs
from projects.prelabel import services as prelabel_services
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(monkeypatch):
    """Celery not eager (as with REDIS_URL), the back-off forgotten between tests."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    monkeypatch.setattr(dispatch, "_broker_down_until", 0.0)
    yield
    celery_app.conf.task_always_eager = previous


def _import_job() -> ImportJob:
    project = factories.ProjectFactory()
    return ImportJob.objects.create(project=project, format="jsonl", file_name="a.jsonl")


def test_a_job_started_while_the_broker_is_down_waits_in_the_outbox_and_says_so(
    broker, django_capture_on_commit_callbacks
):
    job = _import_job()
    down = OperationalError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")
    with mock.patch.object(import_run_job, "apply_async", side_effect=down) as apply_async:
        with django_capture_on_commit_callbacks(execute=True):
            import_enqueue(job.pk)
    assert apply_async.call_count == 1
    pending = PendingJob.objects.get()
    assert (pending.name, pending.args) == ("imports.run", [job.pk])
    assert "Connection refused" in pending.error
    job.refresh_from_db()
    assert job.status == ImportStatus.QUEUED
    assert job.message == dispatch.QUEUE_WAITING_MESSAGE


def test_after_a_failure_the_next_jobs_go_straight_to_the_outbox(broker):
    job = _import_job()
    with mock.patch.object(import_run_job, "apply_async", side_effect=RedisConnectionError("down")) as apply_async:
        assert dispatch.send(import_run_job, job.pk) is False
        assert dispatch.send(import_run_job, job.pk + 1) is False
    assert apply_async.call_count == 1  # the second did not wait on a dead broker
    assert PendingJob.objects.count() == 2


def test_dispatch_sends_the_waiting_jobs_once_the_broker_is_back_and_empties_the_outbox(broker):
    first, second = _import_job(), _import_job()
    PendingJob.objects.create(name="imports.run", args=[first.pk])
    PendingJob.objects.create(name="imports.run", args=[second.pk])
    with mock.patch.object(import_run_job, "apply_async") as apply_async:
        assert dispatch.pending_jobs_dispatch() == 2
    assert [c.kwargs["args"] for c in apply_async.call_args_list] == [[first.pk], [second.pk]]
    assert not PendingJob.objects.exists()


def test_dispatch_stops_at_the_first_failure_and_keeps_the_rest(broker):
    job = _import_job()
    PendingJob.objects.create(name="imports.run", args=[job.pk])
    PendingJob.objects.create(name="imports.run", args=[job.pk + 1])
    with mock.patch.object(import_run_job, "apply_async", side_effect=OperationalError("still down")) as apply_async:
        assert dispatch.pending_jobs_dispatch() == 0
    assert apply_async.call_count == 1
    assert PendingJob.objects.count() == 2
    assert PendingJob.objects.first().error == "OperationalError: still down"


def test_an_outbox_row_naming_no_job_is_dropped(broker):
    PendingJob.objects.create(name="no.such.job", args=[1])
    assert dispatch.pending_jobs_dispatch() == 0
    assert not PendingJob.objects.exists()


def test_eager_mode_runs_jobs_inline_and_lets_their_errors_through(broker):
    celery_app.conf.task_always_eager = True
    with mock.patch.object(import_run_job, "apply_async", side_effect=OperationalError("job failed")):
        with pytest.raises(OperationalError):
            dispatch.send(import_run_job, 1)
    assert not PendingJob.objects.exists()


def test_rate_limit_counters_fail_open_while_the_cache_is_down(rf):
    request = rf.post("/login/")
    broken = mock.Mock(side_effect=RedisConnectionError("Connection refused"))
    with mock.patch.multiple(ratelimit.cache, get=broken, add=broken, incr=broken, delete=broken):
        assert ratelimit.failures("login-ip", "1.2.3.4") == 0
        assert ratelimit.record_failure("login-ip", "1.2.3.4") == 0
        ratelimit.reset("login-ip", "1.2.3.4")
        assert ratelimit.login_blocked(request, "someone") is False
        assert ratelimit.token_blocked(request) is False


def test_a_prelabel_run_started_while_the_broker_is_down_says_it_waits_until_planned(
    broker, django_capture_on_commit_callbacks
):
    project = factories.ProjectFactory()
    manager = factories.UserFactory(username="planner")
    factories.TaskFactory(article__project=project, article__text="Quantix shares rose.")
    rules = {"rules": [{"field": "topic", "value": "business", "keywords": ["shares"]}]}
    with mock.patch.object(prelabel_jobs.prelabel_run_plan_job, "apply_async", side_effect=OperationalError("down")):
        with django_capture_on_commit_callbacks(execute=True):
            run, created = prelabel_services.prelabel_run_start(
                project=project, actor=manager, labeler="rules", config=rules
            )
    assert created and run.message == dispatch.QUEUE_WAITING_MESSAGE
    run.refresh_from_db()
    assert (run.status, run.message) == ("queued", dispatch.QUEUE_WAITING_MESSAGE)
    assert PendingJob.objects.get().name == "prelabel.plan"
    with mock.patch.object(prelabel_jobs.prelabel_chunk_job, "apply_async"):
        prelabel_services.prelabel_run_plan(run_id=run.pk)  # what the dispatched job does
    run.refresh_from_db()
    assert (run.status, run.message) == ("running", "")
