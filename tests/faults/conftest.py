"""Fault tests: SIGKILLed workers and web servers, a lost Redis. The worker subprocess fixture is
shared with other apps (``tests/conftest_worker.py``)."""

import pytest

from tests.conftest_worker import _database_url, celery_worker_process  # noqa: F401


def server_env(settings, secret: str, **extra: str) -> dict:
    """Environment for a real server subprocess (gunicorn, a worker) on this test's database and media."""
    url = _database_url()
    if url is None:
        pytest.skip("needs PostgreSQL (DATABASE_URL) or a file SQLite test database (SQLITE_TEST_NAME)")
    return {
        "DJANGO_SETTINGS_MODULE": "annotator.settings",  # production settings, not the test ones
        "DATABASE_URL": url,
        "SECRET_KEY": f"test-{secret}-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        **extra,
    }
