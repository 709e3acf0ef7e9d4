"""A real Celery worker in a subprocess, for tests that need Redis and a shared database.

Use it from any test folder by importing the fixture in that folder's ``conftest.py``::

    from tests.conftest_worker import celery_worker_process  # noqa: F401

    @pytest.mark.redis
    def test_something(celery_worker_process):
        worker = celery_worker_process(visibility_timeout=2)   # starts `celery -A annotator worker`
        ...                                                     # enqueue jobs, wait on the DB
        worker.kill()                                           # SIGKILL, no goodbye

The fixture needs ``REDIS_URL`` and a database the subprocess can open: PostgreSQL (the test
database ``test_<name>``) or SQLite with ``SQLITE_TEST_NAME`` set to a file; it is skipped, with
the reason, otherwise. It uses ``transactional_db`` so the worker sees committed rows, turns off
the eager mode of the test settings for the test (jobs go through Redis), sends every job (the
default queue and ``settings.PRELABEL_QUEUE``) to a queue of its own that only its workers
listen to, and kills every worker it started (the whole process group) at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from annotator.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]


def _database_url() -> str | None:
    conf = connection.settings_dict
    if connection.vendor == "postgresql":
        user = quote(conf.get("USER") or "")
        password = f":{quote(conf['PASSWORD'])}" if conf.get("PASSWORD") else ""
        auth = f"{user}{password}@" if user else ""
        host = conf.get("HOST") or "127.0.0.1"
        port = f":{conf['PORT']}" if conf.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{conf['NAME']}"
    name = str(conf["NAME"])
    if conf["ENGINE"] == "django.db.backends.sqlite3" and name and ":memory:" not in name and "mode=memory" not in name:
        return f"sqlite:///{name}"
    return None


class WorkerProcess:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh = log.open("wb")
        self.process = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool children (its own process group), then reap it."""
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)
        self._fh.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def celery_worker_process(transactional_db, settings):
    """Factory: ``start(concurrency=1, visibility_timeout=3600, env=None, beat=False) -> WorkerProcess``.

    ``beat=True`` runs Celery beat inside the worker (``-B``), so the periodic jobs of
    ``CELERY_BEAT_SCHEDULE`` (the stalled-job sweeps, the outbox) reach this worker's queue.
    """
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("needs REDIS_URL (a real Redis broker) to run a Celery worker")
    database_url = _database_url()
    if database_url is None:
        pytest.skip("needs PostgreSQL (DATABASE_URL) or a file SQLite test database (SQLITE_TEST_NAME)")
    if not str(celery_app.conf.broker_url).startswith(("redis://", "rediss://")):
        pytest.skip("the Celery broker is not Redis in this process (REDIS_URL was not set when settings loaded)")
    # Test settings run jobs inline; this test sends them through the real broker instead.
    previous_eager = celery_app.conf.task_always_eager
    previous_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queue = f"test-{uuid.uuid4().hex[:12]}"
    settings.PRELABEL_QUEUE = queue
    celery_app.conf.task_default_queue = queue
    workers: list[WorkerProcess] = []
    logdir = Path(tempfile.mkdtemp(prefix="celery-worker-"))

    def start(
        *, concurrency: int = 1, visibility_timeout: int = 3600, env: dict | None = None, beat: bool = False
    ) -> WorkerProcess:
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "annotator.settings",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "test-worker-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "OUTBOUND_ALLOWED_HOSTS": ",".join(settings.OUTBOUND_ALLOWED_HOSTS),
            "PRELABEL_QUEUE": queue,
            "CELERY_QUEUE": queue,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        name = f"w{len(workers)}-{queue}@%h"
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "annotator",
            "worker",
            "-Q",
            queue,
            "-n",
            name,
            "-c",
            str(concurrency),
            "--pool",
            "prefork",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if beat:
            args += ["-B", "-s", str(logdir / f"beat-{len(workers)}")]
        worker = WorkerProcess(args, full_env, logdir / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    celery_app.conf.task_always_eager = previous_eager
    celery_app.conf.task_default_queue = previous_queue
    for worker in workers:
        worker.kill()
    try:
        import redis

        redis.Redis.from_url(redis_url).delete(queue)
    except Exception:  # best effort: a leftover key in a test Redis database is harmless
        pass


def wait_for(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition", worker=None):
    """Poll ``predicate`` until it returns a truthy value; fail with the worker log on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    log = worker.output()[-4000:] if worker is not None else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{log}")
