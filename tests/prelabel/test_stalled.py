"""The stalled-run sweep (``prelabel.resume_stalled``): a run whose chunk lost its worker, or whose
chunk messages were lost, gets its unfinished chunks sent again and predicts every task once; a
live run, a finished run or a plan waiting in the outbox is left alone; a chunk that keeps losing
its worker is given up (its tasks counted failed) so the run finishes; a chunk that predicts for
longer than the stall limit keeps its run's heartbeat fresh.

A lost worker is simulated in-process: the labeler raises ``Killed`` (a ``BaseException``, so the
chunk's own error handling never sees it) and the chunk stays pending.
"""

from __future__ import annotations

import threading

import pytest
from django.conf import settings as django_settings

from projects.core import stalls
from projects.core.models import AuditEvent, PendingJob
from projects.prelabel import services, stalled
from projects.prelabel.labelers.rules import RulesLabeler
from projects.prelabel.models import ChunkStatus, Prediction, PrelabelRun, RunStatus
from tests.conftest_worker import wait_for
from tests.prelabel.test_runs import RULES
from tests.stalls import age, assert_sweep_leaves_alone


class Killed(BaseException):
    """Stands for SIGKILL: not an ``Exception``, so nothing in the chunk catches it."""


def _start(project, manager, django_capture_on_commit_callbacks, *, plan: bool = True) -> PrelabelRun:
    """A run of the rules labeler, one task per chunk; planned (chunks made), no chunk sent yet."""
    with django_capture_on_commit_callbacks(execute=False):
        run, _ = services.prelabel_run_start(
            project=project, actor=manager, labeler="rules", config=RULES, chunk_size=1
        )
        if plan:
            services.prelabel_run_plan(run_id=run.pk)
    run.refresh_from_db()
    return run


def _kill_chunk(run: PrelabelRun, index: int, monkeypatch) -> None:
    def die(self, tasks):
        raise Killed("SIGKILL")

    monkeypatch.setattr(RulesLabeler, "predict", die)
    with pytest.raises(Killed):
        services.prelabel_chunk_process(chunk_id=run.chunks.get(index=index).pk)
    monkeypatch.undo()


@pytest.mark.django_db
def test_a_stalled_run_gets_its_unfinished_chunks_sent_again_and_predicts_every_task_once(
    project, manager, tasks, eager, monkeypatch, django_capture_on_commit_callbacks
):
    run = _start(project, manager, django_capture_on_commit_callbacks)
    assert (run.status, run.total, run.chunks.count()) == (RunStatus.RUNNING, 4, 4)
    services.prelabel_chunk_process(chunk_id=run.chunks.get(index=0).pk)  # done before the kill
    _kill_chunk(run, 1, monkeypatch)  # its worker died mid-chunk; chunks 2 and 3 were never delivered
    age(run)

    with django_capture_on_commit_callbacks(execute=True):
        assert stalled.prelabel_runs_resume_stalled() == (1, 0)

    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED and (run.total, run.done, run.failed) == (4, 4, 0)
    assert dict(run.chunks.values_list("index", "attempts")) == {0: 1, 1: 2, 2: 1, 3: 1}
    assert not run.chunks.exclude(status=ChunkStatus.DONE).exists()
    predictions = Prediction.objects.filter(model_version=run.model_version)
    assert predictions.count() == predictions.values("task").distinct().count() == 4
    event = AuditEvent.objects.get(action="prelabel.resume")
    assert (event.target_id, event.actor_id) == (str(run.pk), None)
    assert event.data == {"from": "running", "chunks_given_up": []}


@pytest.mark.django_db
def test_a_run_with_a_fresh_heartbeat_is_left_alone(
    project, manager, tasks, monkeypatch, django_capture_on_commit_callbacks
):
    run = _start(project, manager, django_capture_on_commit_callbacks)
    _kill_chunk(run, 0, monkeypatch)
    age(run, seconds=django_settings.JOB_STALL_SECONDS - 5)
    assert_sweep_leaves_alone(run, stalled.prelabel_runs_resume_stalled, django_capture_on_commit_callbacks)


@pytest.mark.django_db
@pytest.mark.parametrize("status", [RunStatus.FINISHED, RunStatus.FAILED, RunStatus.CANCELLED])
def test_finished_runs_are_left_alone(project, manager, tasks, status, django_capture_on_commit_callbacks):
    run = _start(project, manager, django_capture_on_commit_callbacks)
    PrelabelRun.objects.filter(pk=run.pk).update(status=status)
    age(run, seconds=10 * django_settings.JOB_STALL_SECONDS)
    assert_sweep_leaves_alone(run, stalled.prelabel_runs_resume_stalled, django_capture_on_commit_callbacks)


@pytest.mark.django_db
def test_a_queued_run_whose_plan_was_lost_is_planned_again(
    project, manager, tasks, eager, django_capture_on_commit_callbacks
):
    run = _start(project, manager, django_capture_on_commit_callbacks, plan=False)
    assert run.status == RunStatus.QUEUED
    age(run)
    with django_capture_on_commit_callbacks(execute=True):
        assert stalled.prelabel_runs_resume_stalled() == (1, 0)
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED and (run.done, run.failed) == (4, 0)


@pytest.mark.django_db
def test_a_plan_waiting_in_the_outbox_is_not_sent_twice(project, manager, tasks, django_capture_on_commit_callbacks):
    run = _start(project, manager, django_capture_on_commit_callbacks, plan=False)
    PendingJob.objects.create(name="prelabel.plan", args=[run.pk])
    age(run)
    with django_capture_on_commit_callbacks(execute=True) as sent:
        assert stalled.prelabel_runs_resume_stalled() == (0, 0)
    assert sent == []


@pytest.mark.django_db
def test_a_chunk_that_keeps_losing_its_worker_is_given_up_and_the_run_finishes(
    project, manager, tasks, eager, monkeypatch, settings, client_for, django_capture_on_commit_callbacks
):
    settings.JOB_MAX_RESUMES = 1
    run = _start(project, manager, django_capture_on_commit_callbacks)
    for index in (1, 2, 3):
        services.prelabel_chunk_process(chunk_id=run.chunks.get(index=index).pk)
    _kill_chunk(run, 0, monkeypatch)
    age(run)
    with django_capture_on_commit_callbacks():  # the plan is sent; no worker runs it here
        assert stalled.prelabel_runs_resume_stalled() == (1, 0)  # started once: sent again
    _kill_chunk(run, 0, monkeypatch)  # and killed again
    assert run.chunks.get(index=0).attempts == 2

    age(run)
    with django_capture_on_commit_callbacks(execute=True):
        assert stalled.prelabel_runs_resume_stalled() == (0, 1)
    run.refresh_from_db()
    message = stalls.gave_up_message("chunk", 2)
    assert run.status == RunStatus.FINISHED and (run.total, run.done, run.failed) == (4, 3, 1)
    assert run.message == message
    chunk = run.chunks.get(index=0)
    assert (chunk.status, chunk.done, chunk.failed) == (ChunkStatus.DONE, 0, 1)
    assert chunk.errors == [{"task_id": chunk.task_ids[0], "message": message}]
    resumes = AuditEvent.objects.filter(action="prelabel.resume").order_by("id")
    assert [e.data for e in resumes] == [
        {"from": "running", "chunks_given_up": []},
        {"from": "running", "chunks_given_up": [0]},
    ]
    detail = client_for(manager).get(f"/api/v1/projects/{project.pk}/prelabel-runs/{run.pk}/").json()
    assert (detail["status"], detail["message"]) == ("finished", message)
    assert detail["errors"] == [{"task_id": chunk.task_ids[0], "message": message}]


@pytest.mark.django_db(transaction=True)
def test_a_chunk_predicting_longer_than_the_stall_limit_keeps_its_run_alive(
    project, manager, tasks, monkeypatch, settings
):
    settings.JOB_STALL_SECONDS = 5  # a heartbeat every second while the chunk predicts
    run = _start_committed(project, manager, monkeypatch)
    original = RulesLabeler.predict
    seen = []

    def slow(self, inputs):
        # Wait until the heartbeat thread has written at least twice, as a slow model would.
        first = PrelabelRun.objects.get(pk=run.pk).updated_at
        wait_for(lambda: PrelabelRun.objects.get(pk=run.pk).updated_at > first, timeout=30, what="a heartbeat")
        seen.append(PrelabelRun.objects.get(pk=run.pk).updated_at)
        assert stalled.prelabel_runs_resume_stalled() == (0, 0)  # the sweep sees the run alive
        return original(self, inputs)

    monkeypatch.setattr(RulesLabeler, "predict", slow)
    assert services.prelabel_chunk_process(chunk_id=run.chunks.get(index=0).pk) == "1 stored, 0 failed"
    assert len(seen) == 1
    assert not [t for t in threading.enumerate() if t.name.endswith("-heartbeat")]


def _start_committed(project, manager, monkeypatch) -> PrelabelRun:
    """As ``_start``, committed (no test transaction), with nothing sent (eager Celery would run it)."""
    with monkeypatch.context() as patched:
        patched.setattr(services, "prelabel_enqueue", lambda *args, **kwargs: None)
        run, _ = services.prelabel_run_start(
            project=project, actor=manager, labeler="rules", config=RULES, chunk_size=1
        )
        services.prelabel_run_plan(run_id=run.pk)
    return PrelabelRun.objects.get(pk=run.pk)
