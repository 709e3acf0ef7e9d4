"""Django's Redis cache, with one Redis client per connection pool instead of one per operation.

Django's ``RedisCacheClient.get_client`` builds a ``redis.Redis`` for every cache call; with
redis-py 8 that fills some 170 response callbacks each time, about 80 µs of CPU against about
40 µs for the call itself. A submission makes three cache calls (the token rate limit and two
per-project memos). A ``redis.Redis`` holds no connection of its own (it takes one from the pool
for each command), so one per pool serves every call, as Django's own instance would.
"""

from __future__ import annotations

from django.core.cache.backends import redis


class RedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
