"""How spam filtering is going: counts per hour (ScanHour) and rspamd's last answer (ServiceHealth).

Written by the sweeps after each batch, read by the operators' dashboard and /metrics.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from .models import PendingLearn, PendingScan, ScanHour, ServiceHealth

RSPAMD = "rspamd"  # the normal worker, which scans
CONTROLLER = "rspamd-controller"  # which learns


@dataclass
class Counts:
    scanned: int = 0
    spam: int = 0
    probable: int = 0
    failed: int = 0
    learned: int = 0
    rspamd_scans: int = 0
    rspamd_seconds: float = 0.0
    request_seconds: float = 0.0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


def hour_of(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def record(counts: Counts, now: dt.datetime | None = None) -> None:
    """Add ``counts`` to the current hour's row (created by whichever sweep comes first)."""
    if not counts:
        return
    hour = hour_of(now or timezone.now())
    changes = {f.name: F(f.name) + getattr(counts, f.name) for f in fields(counts) if getattr(counts, f.name)}
    if ScanHour.objects.filter(hour=hour).update(**changes):
        return
    try:
        with transaction.atomic():
            ScanHour.objects.create(hour=hour)
    except IntegrityError:
        pass  # another sweep created it first
    ScanHour.objects.filter(hour=hour).update(**changes)


def answered(latency: float | None, now: dt.datetime | None = None, *, service: str = RSPAMD) -> None:
    now = now or timezone.now()
    values = {"checked_at": now, "last_ok_at": now, "failing_since": None, "error": ""}
    if latency is not None:
        values["latency_seconds"] = latency
    _save(service, **values)


def failed(error: str, now: dt.datetime | None = None, *, service: str = RSPAMD) -> None:
    now = now or timezone.now()
    _save(service, checked_at=now, error=error[:200])
    ServiceHealth.objects.filter(name=service, failing_since__isnull=True).update(failing_since=now)


def _save(service: str, **values) -> None:
    if ServiceHealth.objects.filter(name=service).update(**values):
        return
    try:
        with transaction.atomic():
            ServiceHealth.objects.create(name=service, **values)
    except IntegrityError:
        ServiceHealth.objects.filter(name=service).update(**values)


def rspamd_health() -> ServiceHealth | None:
    return ServiceHealth.objects.filter(name=RSPAMD).first()


def controller_health() -> ServiceHealth | None:
    return ServiceHealth.objects.filter(name=CONTROLLER).first()


@dataclass(frozen=True)
class Backlog:
    scans: int
    oldest_scan: dt.datetime | None
    learns: int


def backlog() -> Backlog:
    """What waits; the oldest scan among those no sync holds back (a long first sync is not a backlog)."""
    now = timezone.now()
    waiting = PendingScan.objects.exclude(message__account__sync_lease_until__gt=now)
    oldest = waiting.order_by("created_at").values_list("created_at", flat=True).first()
    return Backlog(PendingScan.objects.count(), oldest, PendingLearn.objects.count())


def totals(since: dt.datetime | None = None) -> Counts:
    """Counts summed over the hours from ``since`` (its hour counts whole), or over every hour."""
    rows = ScanHour.objects.all() if since is None else ScanHour.objects.filter(hour__gte=hour_of(since))
    sums = rows.aggregate(**{f.name: Sum(f.name) for f in fields(Counts)})
    return Counts(**{name: value or 0 for name, value in sums.items()})


def hourly(hours: int, now: dt.datetime | None = None) -> list[tuple[dt.datetime, Counts]]:
    """The last ``hours`` hours, oldest first, each with its counts (zero for hours without a row)."""
    end = hour_of(now or timezone.now())
    start = end - dt.timedelta(hours=hours - 1)
    rows = {row.hour.astimezone(dt.UTC): row for row in ScanHour.objects.filter(hour__gte=start)}
    result = []
    for i in range(hours):
        hour = start + dt.timedelta(hours=i)
        row = rows.get(hour)
        counts = Counts(**{f.name: getattr(row, f.name) for f in fields(Counts)}) if row else Counts()
        result.append((hour, counts))
    return result
