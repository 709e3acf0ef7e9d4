"""Redis lost for a while under a running web server and worker: starting an import or export still
answers 202 (the job is saved, says it waits for the queue, and sits in the database outbox),
next-task and submit keep working, /healthz reports the broker down; once Redis is back the
waiting jobs run to the end, each once.

Starts its own ``redis-server`` on a free port (and kills it), gunicorn, and a Celery worker with
embedded beat, all against the test database: needs the redis-server binary and PostgreSQL (or
SQLite with ``SQLITE_TEST_NAME``); not the shared Redis.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from bench.util import Gunicorn, free_port
from projects.core.dispatch import QUEUE_WAITING_MESSAGE
from projects.core.models import PendingJob, Role
from projects.core.services import token_create
from projects.documents.models import Article
from projects.exports.models import ExportJob, ExportStatus
from projects.imports.models import ImportJob, ImportStatus
from tests import factories
from tests.conftest_worker import ROOT, wait_for
from tests.faults.conftest import server_env

pytestmark = [pytest.mark.slow]


class RedisServer:
    def __init__(self, port: int, logdir) -> None:
        self.port, self.logdir = port, logdir
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        log = (self.logdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._answers, timeout=20, what="redis-server to answer")
        return self

    def _answers(self) -> bool:
        try:
            import redis

            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


def _call(port: int, method: str, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, (json.loads(data) if data else {})


@pytest.fixture
def stack_env(transactional_db, settings, tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary (apt-get install redis-server)")
    return server_env(
        settings,
        "redis-loss",
        JOB_REDISPATCH_SECONDS="1",
        QUALITY_RECOMPUTE_DELAY="3600",
        PYTHONUNBUFFERED="1",
    )


def test_lost_redis_keeps_submits_working_and_runs_the_waiting_jobs_when_it_is_back(stack_env, tmp_path):
    project = factories.ProjectFactory()
    manager = factories.UserFactory(username="boss")
    factories.MembershipFactory(project=project, user=manager, role=Role.MANAGER)
    annotator = factories.UserFactory(username="worker-bee")
    factories.MembershipFactory(project=project, user=annotator, role=Role.ANNOTATOR)
    factories.TaskFactory(article__project=project, article__text="Markets rose on Tuesday.")
    manager_key, annotator_key = token_create(user=manager, name="m")[1], token_create(user=annotator, name="a")[1]
    imports = f"/api/v1/projects/{project.pk}/imports/"

    redis_server = RedisServer(free_port(), tmp_path).start()
    env = {**stack_env, "REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0"}
    web = Gunicorn(workers=1, threads=4, env=env, timeout=120, log=tmp_path / "web.log")
    worker_log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "annotator", "worker", "-B", "-s", str(tmp_path / "beat"), "-c", "1"]
        + ["--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "annotator.settings", **env},
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        web.start()
        # The stack works: an import runs on the worker.
        status, first = _call(web.port, "POST", imports, manager_key, {"articles": [{"id": "x0", "text": "Zero."}]})
        assert status == 202, first
        wait_for(
            lambda: ImportJob.objects.get(pk=first["id"]).status == ImportStatus.SUCCEEDED,
            timeout=60,
            what="the first import on the worker",
        )

        redis_server.kill()
        articles = [{"id": f"r{i}", "text": f"Written while Redis was down, {i}."} for i in range(20)]
        status, waiting = _call(web.port, "POST", imports, manager_key, {"articles": articles})
        assert status == 202, waiting
        assert (waiting["status"], waiting["message"]) == ("queued", QUEUE_WAITING_MESSAGE)
        status, export = _call(web.port, "POST", f"/api/v1/projects/{project.pk}/exports/", manager_key, {})
        assert status == 202, export
        assert (export["status"], export["error"]) == ("queued", QUEUE_WAITING_MESSAGE)

        # Annotators do not need Redis: next-task, submit and the token check all work.
        status, task = _call(web.port, "POST", f"/api/v1/projects/{project.pk}/next-task/", annotator_key)
        assert status == 200, task
        result = {"result": {"topic": "business"}}
        status, annotation = _call(web.port, "POST", f"/api/v1/tasks/{task['id']}/annotations/", annotator_key, result)
        assert status == 201, annotation
        conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
        conn.request("GET", "/healthz")
        health = conn.getresponse()
        assert health.status == 503
        assert json.loads(health.read())["checks"]["broker"].startswith("error")
        assert PendingJob.objects.filter(name__in=["imports.run", "exports.build"]).count() == 2
        assert ImportJob.objects.get(pk=waiting["id"]).status == ImportStatus.QUEUED

        redis_server.start()  # empty: whatever it held is gone, the outbox is in the database
        wait_for(
            lambda: (
                ImportJob.objects.get(pk=waiting["id"]).status == ImportStatus.SUCCEEDED
                and ExportJob.objects.get(pk=export["id"]).status == ExportStatus.DONE
            ),
            timeout=90,
            what="the waiting import and export after Redis came back",
        )
    except BaseException:
        print((tmp_path / "worker.log").read_text()[-4000:])
        raise
    finally:
        web.kill()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        worker_log.close()
        redis_server.kill()

    job = ImportJob.objects.get(pk=waiting["id"])
    assert (job.rows_created, job.message) == (20, "")
    assert Article.objects.filter(project=project).count() == 1 + 1 + 20
    done = ExportJob.objects.get(pk=export["id"])
    assert (done.attempts, done.error, done.annotation_count) == (1, "", 1)
    assert not PendingJob.objects.exists()
