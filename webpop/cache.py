"""Helpers for the shared cache (django-redis with REDIS_URL, else files under the data dir)."""

from __future__ import annotations

from django.core.cache import cache
from django.db import transaction


def drop_now_and_at_commit(keys: list[str]) -> None:
    """Delete cached copies of changed rows now, and again when the transaction commits.

    Now, so this request sees the change; at commit, because a request running meanwhile
    may have cached the row as it was before. Raises if the cache is unreachable.
    """
    if keys:
        cache.delete_many(keys)
        transaction.on_commit(lambda: cache.delete_many(keys))
