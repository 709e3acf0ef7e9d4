"""A worker killed with SIGKILL in the middle of a run loses nothing and duplicates nothing.

The killed chunk's message is not redelivered during the test (the broker's visibility timeout is
left at an hour): the second worker runs beat, and the stalled-run sweep (``prelabel.resume_stalled``,
every second, 5 s stall limit) sends the unfinished chunk again once the run has gone quiet.
Needs REDIS_URL and a database a second process can open (PostgreSQL, or SQLite with
SQLITE_TEST_NAME); see ``tests/conftest_worker.py``.
"""

import pytest

from projects.core.models import AuditEvent
from projects.prelabel import services
from projects.prelabel.models import ChunkStatus, Prediction, PrelabelRun, RunStatus
from tests import factories
from tests.conftest_worker import wait_for
from tests.prelabel.fakes import ls_ok

pytestmark = [pytest.mark.redis, pytest.mark.slow]

TASKS = 120
CHUNK = 10


def test_sigkill_mid_run_then_a_new_worker_prelabels_every_task_exactly_once(celery_worker_process, fake_server):
    server = fake_server(ls_ok, delay=0.4)  # each /predict takes 0.4 s: time to kill mid-chunk
    project = factories.ProjectFactory()
    admin = factories.UserFactory(username="killer")
    for i in range(TASKS):
        factories.TaskFactory(article__project=project, article__text=f"Quantix report {i} from Helios Bank.")
    services.labeler_save(
        project=project,
        actor=admin,
        name="remote",
        kind="ls_backend",
        config={"url": server.url, "batch_size": CHUNK, "model_version": "fake-1"},
    )
    first = celery_worker_process()
    run, _ = services.prelabel_run_start(project=project, actor=admin, labeler="remote", chunk_size=CHUNK)

    # Kill the worker while it waits on a /predict answer: that chunk is taken but not acked.
    wait_for(lambda: len(server.paths("POST")) >= 4, timeout=60, what="a few chunks", worker=first)
    first.kill()
    predicted_before = len([p for p in server.paths("POST") if p == "/predict"])
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.done < TASKS

    second = celery_worker_process(beat=True, env={"JOB_STALL_SECONDS": "5", "JOB_STALL_CHECK_SECONDS": "1"})
    wait_for(
        lambda: PrelabelRun.objects.get(pk=run.pk).status == RunStatus.FINISHED,
        timeout=120,
        what="the run to finish on the second worker",
        worker=second,
    )
    run.refresh_from_db()
    assert (run.total, run.done, run.failed) == (TASKS, TASKS, 0)
    assert not run.chunks.exclude(status=ChunkStatus.DONE).exists()
    predictions = Prediction.objects.filter(project=project, model_version="fake-1")
    assert predictions.count() == TASKS
    assert predictions.values("task").distinct().count() == TASKS
    # The chunk in flight at the kill was sent again and predicted a second time, yet stored once.
    assert AuditEvent.objects.filter(action="prelabel.resume", target_id=str(run.pk)).exists()
    predict_calls = [p for p in server.paths("POST") if p == "/predict"]
    assert len(predict_calls) > TASKS // CHUNK
    assert predicted_before >= 1
