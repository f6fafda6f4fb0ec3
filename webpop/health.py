"""Liveness and readiness endpoints for load balancers and orchestrators (no login, no secrets)."""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering."""
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _broker() -> None:
    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
    else:
        folder = settings.CELERY_BROKER_DIR / "queue"
        if not folder.is_dir():
            raise OSError(f"broker folder {folder} is missing")


class StorageProbeError(Exception):
    """The mail storage gave back other bytes than were written."""


def _storage() -> None:
    """Write, read back and delete a small probe object: proves the storage takes writes, not just lists."""
    from django.core.files.base import ContentFile

    from mailbox import store

    storage = store.mail_storage()
    payload = secrets.token_bytes(16)
    name = storage.save(f"readyz/probe-{secrets.token_hex(8)}", ContentFile(payload))
    try:
        with storage.open(name, "rb") as fh:
            if fh.read() != payload:
                raise StorageProbeError("probe read back differs")
    finally:
        storage.delete(name)


CHECKS = {"database": _database, "broker": _broker, "storage": _storage}


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Database, broker and mail storage all reachable: ready for traffic."""
    results = {}
    ready = True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
            results[name] = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
        except Exception as exc:  # report the class only: messages may carry hosts or paths
            ready = False
            results[name] = {"ok": False, "error": type(exc).__name__}
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503)
