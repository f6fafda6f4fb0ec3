"""Helpers for the shared cache (django-redis with REDIS_URL, else files under the data dir)."""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache import cache
from django.db import transaction

REPORT_EVERY = 60.0  # seconds between warnings about the same unreachable cache, per process

_reported: dict[str, float] = {}
_lock = threading.Lock()


def drop_now_and_at_commit(keys: list[str]) -> None:
    """Delete cached copies of changed rows now, and again when the transaction commits.

    Now, so this request sees the change; at commit, because a request running meanwhile
    may have cached the row as it was before. Raises if the cache is unreachable.
    """
    if keys:
        cache.delete_many(keys)
        transaction.on_commit(lambda: cache.delete_many(keys))


def report_unavailable(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """Warn that ``what`` went without the cache: once a minute, not on every page while Redis is down.

    Names the exception's class only: a connection error's message names the host it tried.
    """
    now = time.monotonic()
    with _lock:
        if now - _reported.get(what, -REPORT_EVERY) < REPORT_EVERY:
            return
        _reported[what] = now
    logger.warning("%s unavailable (%s); going on without it", what, type(exc).__name__)
