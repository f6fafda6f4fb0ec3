"""How many tasks wait in the Celery queue: Redis LLEN, or the files of the folder queue."""

from __future__ import annotations

import logging

from django.conf import settings

log = logging.getLogger(__name__)

QUEUE = "celery"  # the default queue every task here goes to


def queue_depth(queue: str = QUEUE) -> int | None:
    """Messages waiting in ``queue``; None when the broker cannot be asked."""
    try:
        if settings.REDIS_URL:
            import redis

            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
            try:
                return int(client.llen(queue))
            finally:
                client.close()
        folder = settings.CELERY_BROKER_DIR / "queue"
        # kombu's filesystem transport names each message "<ms>_<uuid>.<queue>.msg".
        suffix = f".{queue}.msg"
        return sum(1 for entry in folder.iterdir() if entry.name.endswith(suffix))
    except Exception as exc:  # the dashboard shows "n/a" rather than failing
        log.warning("queue depth unavailable: %s", type(exc).__name__)
        return None
