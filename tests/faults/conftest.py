"""Fault tests: SIGKILLed workers and web servers, a lost Redis. The worker subprocess fixture is
shared with other apps (``tests/conftest_worker.py``)."""

from tests.conftest_worker import celery_worker_process  # noqa: F401
