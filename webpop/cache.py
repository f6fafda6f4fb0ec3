"""Django's Redis cache, reusing one client object per connection pool.

Django's RedisCacheClient builds a new ``redis.Redis`` for every call (its constructor
fills a table of ~170 response callbacks): on a page served from the cache that was a
large part of the request. ``redis.Redis`` is thread-safe over its pool, so one will do.
"""

from __future__ import annotations

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.db import transaction


def drop_now_and_at_commit(keys: list[str]) -> None:
    """Delete cached copies of changed rows now, and again when the transaction commits.

    Now, so this request sees the change; at commit, because a request running meanwhile
    may have cached the row as it was before. Raises if the cache is unreachable.
    """
    if keys:
        cache.delete_many(keys)
        transaction.on_commit(lambda: cache.delete_many(keys))


class _Client(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _Client
