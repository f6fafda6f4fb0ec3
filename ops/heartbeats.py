"""Worker heartbeats: each Celery worker records ``node name -> last seen`` in the database.

The database is shared by every machine (the broker may be a local folder), so
the dashboard sees all workers wherever they run. One conditional UPDATE per
beat; an INSERT only the first time a node name is seen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import WorkerHeartbeat

FORGET_AFTER = dt.timedelta(days=7)  # a node name not seen for this long leaves the list


def interval() -> int:
    return settings.WEBPOP_HEARTBEAT_SECONDS


def record(hostname: str, *, pid: int, concurrency: int = 0, starting: bool = False, now=None) -> None:
    """The worker ``hostname`` is alive now (``starting``: it has just come up)."""
    now = now or timezone.now()
    fields = {"last_seen_at": now, "pid": pid, "stopped_at": None}
    if starting:
        fields.update(started_at=now, concurrency=concurrency)
    if WorkerHeartbeat.objects.filter(hostname=hostname).update(**fields):
        return
    try:
        with transaction.atomic():
            WorkerHeartbeat.objects.create(
                hostname=hostname, pid=pid, concurrency=concurrency, started_at=now, last_seen_at=now
            )
    except IntegrityError:  # another process of the same node name inserted first
        WorkerHeartbeat.objects.filter(hostname=hostname).update(**fields)
    if starting:
        WorkerHeartbeat.objects.filter(last_seen_at__lt=now - FORGET_AFTER).delete()


def record_stopped(hostname: str, *, pid: int, now=None) -> None:
    """A clean shutdown: the dashboard shows "stopped" at once instead of waiting for staleness."""
    now = now or timezone.now()
    WorkerHeartbeat.objects.filter(hostname=hostname, pid=pid).update(last_seen_at=now, stopped_at=now)


@dataclass(frozen=True)
class WorkerStatus:
    hostname: str
    pid: int
    concurrency: int
    started_at: dt.datetime
    last_seen_at: dt.datetime
    state: str  # "alive", "late" (missed beats) or "stopped"
    seconds_since: int


def workers(now=None) -> list[WorkerStatus]:
    now = now or timezone.now()
    late_after = dt.timedelta(seconds=3 * interval())
    result = []
    for row in WorkerHeartbeat.objects.order_by("hostname"):
        if row.stopped_at is not None:
            state = "stopped"
        elif now - row.last_seen_at > late_after:
            state = "late"
        else:
            state = "alive"
        result.append(
            WorkerStatus(
                hostname=row.hostname,
                pid=row.pid,
                concurrency=row.concurrency,
                started_at=row.started_at,
                last_seen_at=row.last_seen_at,
                state=state,
                seconds_since=max(0, int((now - row.last_seen_at).total_seconds())),
            )
        )
    return result
