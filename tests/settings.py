"""Test settings: production settings plus a throwaway key and plain static storage.

Everything else (database, broker) still comes from the environment, so the same suite runs on
SQLite without Redis and on PostgreSQL with Redis.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-key-not-for-production-0123456789abcdefghijklmnop")

from annotator.settings import *  # noqa: E402,F403

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation in tests
MEDIA_ROOT = Path(os.environ.get("TEST_MEDIA_ROOT", "/tmp/annotator-test-media"))  # noqa: F405

# Ordinary tests run Celery jobs inline, inside the test's transaction, whatever REDIS_URL says.
# Tests marked ``redis`` switch to the real broker and start a real worker process (see the
# worker fixture), so the PostgreSQL + Redis run of CI exercises real queueing too.
CELERY_TASK_ALWAYS_EAGER = True
# Login-failure counters live in the cache; keep them per-process and cleared per test (conftest).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
