"""Fixtures for pre-labeling tests. The Celery worker subprocess fixture lives in
``tests/conftest_worker.py`` (re-exported here) so other apps' tests can use it too."""

from __future__ import annotations

import pytest

from annotator.celery import app as celery_app
from projects.core.models import Role
from projects.core.schema import DEMO_SCHEMA
from tests import factories
from tests.conftest_worker import celery_worker_process  # noqa: F401
from tests.prelabel.fakes import FakeServer

TEXTS = [
    "Elena Marchetti met Quantix in Lyon on Tuesday.",
    "Helios Bank raised rates; Omar Haddad said the market fell.",
    "The senate voted on the budget bill in Toronto.",
    "Quantix shares rose after Chen Wei spoke to investors.",
]


@pytest.fixture
def eager(settings):
    """Run enqueued jobs in-process (Celery eager), whatever REDIS_URL says."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def local_http(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.PRELABEL_RETRY_BACKOFF = 0.01


@pytest.fixture
def fake_server(local_http):
    def start(behaviour=None, **kwargs) -> FakeServer:
        server = FakeServer(behaviour, **kwargs) if behaviour else FakeServer(**kwargs)
        servers.append(server.__enter__())
        return server

    servers: list[FakeServer] = []
    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def tasks(project):
    return [factories.TaskFactory(article__project=project, article__text=text) for text in TEXTS]


@pytest.fixture
def demo_project(db):
    project = factories.ProjectFactory(label_schema=DEMO_SCHEMA)
    return project


@pytest.fixture
def prelabel_admin(project):
    user = factories.UserFactory(username="pria")
    factories.MembershipFactory(project=project, user=user, role=Role.ADMIN)
    return user
