"""``annotator.cache.RedisCache``: Django's Redis cache with one client per connection pool."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings

from annotator.cache import RedisCache

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL")


@pytest.fixture
def cache():
    cache = RedisCache(settings.REDIS_URL, {"KEY_PREFIX": f"test-cache-{threading.get_ident()}"})
    yield cache
    cache.delete_many(["a", "b", "n"])


def test_one_client_serves_every_call(cache):
    client = cache._cache.get_client("a")
    assert cache._cache.get_client("b", write=True) is client
    cache.set("a", {"x": [1, 2]}, 30)
    cache.set("b", "text", 30)
    assert cache.get("a") == {"x": [1, 2]} and cache.get("b") == "text"
    assert cache.get_many(["a", "b", "missing"]) == {"a": {"x": [1, 2]}, "b": "text"}
    assert cache.add("a", "other", 30) is False
    assert cache.add("n", 1, 30) is True and cache.incr("n") == 2
    cache.delete("a")
    assert cache.get("a", "gone") == "gone"
    assert cache._cache.get_client("a") is client


def test_threads_share_the_client(cache):
    errors = []

    def work(i: int) -> None:
        try:
            for j in range(50):
                cache.set("n", j, 30)
                assert isinstance(cache.get("n"), int)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
