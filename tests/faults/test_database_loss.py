"""PostgreSQL lost under a running web server and worker: ``/healthz`` answers 503, the API answers
503 with its JSON error body (pages a short 503 page), never a 500; once the database is back,
everything works again by itself, and nothing asked for during the outage was half-written.

The servers reach PostgreSQL through a TCP proxy the test owns (``tests/faults/proxy.py``):
cutting it resets their connections and refuses new ones, as a database that went away would,
without stopping the PostgreSQL server other sessions share. Needs PostgreSQL and REDIS_URL.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from annotator.celery import app as celery_app
from annotator.middleware import DATABASE_UNAVAILABLE
from bench.util import Gunicorn
from projects.annotations.models import Annotation
from projects.core.models import Role
from projects.core.services import token_create
from projects.documents.models import Article
from projects.imports.models import ImportJob, ImportStatus
from tests import factories
from tests.conftest_worker import _database_url, wait_for
from tests.faults.conftest import server_env
from tests.faults.proxy import TcpProxy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not django_settings.IS_POSTGRES, reason="needs PostgreSQL over TCP: the test cuts a proxy in front of it"
    ),
]


def _call(port: int, method: str, path: str, *, key: str = "", cookie: str = "", body: dict | None = None):
    """(status, headers, body bytes) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Token {key}"
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), data


def _import(port: int, path: str, key: str, text: str, worker, *, what: str) -> None:
    """Import one article through the API and wait until the worker has stored it."""
    status, _, body = _call(port, "POST", path, key=key, body={"articles": [{"text": text}]})
    assert status == 202, body
    job_id = json.loads(body)["id"]
    wait_for(
        lambda: ImportJob.objects.get(pk=job_id).status == ImportStatus.SUCCEEDED, timeout=60, what=what, worker=worker
    )


def _through(proxy: TcpProxy) -> str:
    """The test database's URL, with the proxy as host and port."""
    parts = urlsplit(_database_url())
    auth, _, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{auth}@127.0.0.1:{proxy.port}" if auth else f"127.0.0.1:{proxy.port}"))


def test_lost_database_gives_503s_with_a_clear_body_and_everything_works_once_it_is_back(
    celery_worker_process, settings, tmp_path
):
    project = factories.ProjectFactory()
    manager = factories.UserFactory(username="boss")
    factories.MembershipFactory(project=project, user=manager, role=Role.MANAGER)
    annotator = factories.UserFactory(username="bee")
    factories.MembershipFactory(project=project, user=annotator, role=Role.ANNOTATOR)
    task = factories.TaskFactory(article__project=project, article__text="Markets rose on Tuesday.")
    manager_key, annotator_key = token_create(user=manager, name="m")[1], token_create(user=annotator, name="a")[1]
    browser = Client()
    browser.force_login(manager)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={browser.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    imports = f"/api/v1/projects/{project.pk}/imports/"

    conf = connection.settings_dict
    proxy = TcpProxy(conf.get("HOST") or "127.0.0.1", int(conf.get("PORT") or 5432)).start()
    database_url = _through(proxy)
    worker = celery_worker_process(env={"DATABASE_URL": database_url})
    env = server_env(
        settings,
        "db-loss",
        DATABASE_URL=database_url,
        REDIS_URL=celery_app.conf.broker_url,
        CELERY_QUEUE=celery_app.conf.task_default_queue,  # the worker fixture's own queue
        SECRET_KEY=django_settings.SECRET_KEY,  # the session made here is valid there
        PYTHONUNBUFFERED="1",
    )
    web = Gunicorn(workers=1, threads=4, env=env, timeout=120, log=tmp_path / "web.log")
    try:
        web.start()
        # Both servers hold a database connection before the outage.
        assert _call(web.port, "GET", "/healthz")[0] == 200
        assert _call(web.port, "GET", f"/api/v1/projects/{project.pk}/", cookie=cookie)[0] == 200  # signed in
        _import(web.port, imports, manager_key, "One.", worker, what="an import before the outage")

        proxy.cut()
        status, _, body = _call(web.port, "GET", "/healthz")
        assert status == 503 and json.loads(body)["checks"]["database"].startswith("error"), body
        expected = {"error": {"code": "database_unavailable", "message": DATABASE_UNAVAILABLE, "fields": {}}}
        for method, path, key, payload in [
            ("GET", f"/api/v1/projects/{project.pk}/", manager_key, None),
            ("POST", f"/api/v1/projects/{project.pk}/next-task/", annotator_key, None),
            ("POST", f"/api/v1/tasks/{task.pk}/annotations/", annotator_key, {"result": {"topic": "business"}}),
            ("POST", imports, manager_key, {"articles": [{"text": "Written during the outage."}]}),
        ]:
            status, headers, body = _call(web.port, method, path, key=key, body=payload)
            assert status == 503, (path, body[:300])
            assert headers["Content-Type"] == "application/json", path
            assert headers["Retry-After"] == "10"
            assert json.loads(body) == expected
        status, headers, body = _call(web.port, "GET", "/", cookie=cookie)
        assert status == 503 and headers["Content-Type"].startswith("text/html")
        assert b"Temporarily unavailable" in body and b"Server Error" not in body
        assert "Set-Cookie" not in headers  # the browser keeps its session: not signed out

        proxy.restore()
        wait_for(lambda: _call(web.port, "GET", "/healthz")[0] == 200, timeout=30, what="/healthz after the outage")
        # Every server thread answers again at once: a connection broken by the outage is
        # replaced before it is used (health checks), so no request fails after recovery.
        for _ in range(8):
            status, _, body = _call(web.port, "GET", f"/api/v1/projects/{project.pk}/", key=manager_key)
            assert status == 200, body[:300]
        assert _call(web.port, "GET", f"/api/v1/projects/{project.pk}/", cookie=cookie)[0] == 200  # still signed in
        status, _, body = _call(web.port, "POST", f"/api/v1/projects/{project.pk}/next-task/", key=annotator_key)
        assert status == 200, body[:300]
        submit = f"/api/v1/tasks/{task.pk}/annotations/"
        status, _, body = _call(web.port, "POST", submit, key=annotator_key, body={"result": {"topic": "business"}})
        assert status == 201, body[:300]
        _import(web.port, imports, manager_key, "Two.", worker, what="an import on the worker after the outage")
    finally:
        web.kill()
        proxy.cut()

    # Nothing requested during the outage was written, and nothing twice.
    assert ImportJob.objects.filter(project=project).count() == 2
    assert sorted(Article.objects.filter(project=project).values_list("text", flat=True)) == [
        "Markets rose on Tuesday.",
        "One.",
        "Two.",
    ]
    assert Annotation.objects.filter(task=task).count() == 1
