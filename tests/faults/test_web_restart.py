"""The web server SIGKILLed in the middle of a stream of submits, restarted, and the failed submits
retried by the client with the same body: nothing lost, nothing doubled, counters true.

Two requests are stopped at exact lines with ``FAULT_HANG_AT`` (``projects/core/faults.py``): one
inside the submit transaction (never committed), one after the commit but before the answer (the
client never hears that it worked). Needs a database that gunicorn can open from another process:
PostgreSQL, or SQLite with ``SQLITE_TEST_NAME``; no Redis.
"""

from __future__ import annotations

import http.client
import json
import threading

import pytest

from bench.util import Gunicorn
from projects.annotations.models import Annotation, AnnotationStatus
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.assignment.services import task_next_for_user
from projects.core.models import Role
from projects.core.services import token_create
from tests import factories
from tests.conftest_worker import wait_for
from tests.faults.conftest import server_env

pytestmark = [pytest.mark.slow]

TASKS = 12
RESULT = json.dumps({"result": {"topic": "business"}})


def _submit(port: int, key: str, task_id: int) -> int | str:
    """The HTTP status, or the name of the error when the server died before answering."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    try:
        conn.request("POST", f"/api/v1/tasks/{task_id}/annotations/", body=RESULT, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


@pytest.fixture
def web_env(transactional_db, settings, tmp_path):
    return server_env(
        settings,
        "web-restart",
        REDIS_URL="",  # submits need no broker; jobs they trigger run in-process
        FAULT_MARKER_DIR=str(tmp_path),
    )


def test_server_killed_mid_submit_then_client_retries_store_each_annotation_once(web_env, tmp_path):
    project = factories.ProjectFactory()
    project.overlap = 1
    project.save(update_fields=["overlap"])
    for i in range(TASKS):
        factories.TaskFactory(article__project=project, article__text=f"News {i}.")
    keys: dict[int, str] = {}  # task id → the token of the annotator who leased it
    for i in range(TASKS):
        user = factories.UserFactory(username=f"stream{i}")
        factories.MembershipFactory(project=project, user=user, role=Role.ANNOTATOR)
        keys[task_next_for_user(project=project, user=user).task_id] = token_create(user=user, name="faults")[1]
    tasks = list(keys)

    hang = {"FAULT_HANG_AT": "annotation.submit:4,annotation.submitted:7"}
    server = Gunicorn(workers=1, threads=4, env={**web_env, **hang}, timeout=120, log=tmp_path / "web.log").start()
    outcomes: dict[int, int | str] = {}

    def submit(task_id: int) -> None:
        outcomes[task_id] = _submit(server.port, keys[task_id], task_id)

    threads = [threading.Thread(target=submit, args=(task_id,)) for task_id in tasks]
    try:
        for thread in threads:
            thread.start()
        wait_for(
            lambda: (tmp_path / "annotation.submit").exists() and (tmp_path / "annotation.submitted").exists(),
            timeout=60,
            what="two submits to hang",
        )
        wait_for(lambda: sum(1 for t in threads if t.is_alive()) <= 2, timeout=60, what="the other submits")
    finally:
        server.kill()
    for thread in threads:
        thread.join(timeout=30)

    failed = [task_id for task_id, outcome in outcomes.items() if outcome not in (200, 201)]
    assert len(failed) == 2, outcomes
    assert all(isinstance(outcomes[t], str) for t in failed)  # no answer at all: the client cannot know
    # One of the two committed before the kill, the other was rolled back.
    stored = Annotation.objects.filter(project=project, status=AnnotationStatus.SUBMITTED)
    assert stored.count() == TASKS - 1
    assert sum(1 for t in failed if stored.filter(task_id=t).exists()) == 1

    server.env = {k: v for k, v in server.env.items() if k != "FAULT_HANG_AT"}
    server.start()
    try:
        retried = {task_id: _submit(server.port, keys[task_id], task_id) for task_id in failed}
    finally:
        server.stop()
    # The committed one is answered as an update (200), the lost one created now (201).
    assert sorted(retried.values()) == [200, 201]

    assert stored.count() == TASKS
    assert stored.values("task").distinct().count() == TASKS
    assert Annotation.objects.filter(project=project).count() == TASKS
    for task in Task.objects.filter(project=project):
        assert task.submitted_count == 1 and task.is_complete, task.pk
    assert Assignment.objects.filter(project=project, status=AssignmentStatus.SUBMITTED).count() == TASKS
    assert not Assignment.objects.filter(project=project, status=AssignmentStatus.LEASED).exists()
