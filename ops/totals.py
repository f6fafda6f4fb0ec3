"""Monotonic sync totals for /metrics that stay cheap however long the history grows.

Every minute, finished SyncRun rows are added into MetricTotal rows and a
watermark (the highest SyncRun id added) moves forward; a scrape reads the
totals plus only the rows above the watermark. SyncRun rows are created when a
sync starts and finished once, so the fold stops at the oldest run still in
progress (or treats it as abandoned once it is older than twice the sync lease:
a worker was killed). Old rows can then be deleted without counters going back.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from mailbox.models import SyncRun

from .models import MetricTotal

WATERMARK = "_folded_through_id"
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
NOT_AN_ERROR = ("", "busy", "stopped")
SETTLE = dt.timedelta(minutes=1)
_DURATION = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())


def _seconds(value) -> float:
    if value is None:
        return 0.0
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000  # some backends sum durations as microseconds


def aggregate(runs: QuerySet[SyncRun]) -> dict[str, float]:
    """The totals of ``runs`` by name (two queries); unfinished runs count nowhere."""
    finished = runs.filter(finished_at__isnull=False)
    buckets = {
        f"duration_le:{bound:g}": Count("id", filter=Q(duration__lte=dt.timedelta(seconds=bound)))
        for bound in DURATION_BUCKETS
    }
    row = finished.annotate(duration=_DURATION).aggregate(
        **{
            "syncs:ok": Count("id", filter=Q(error_class="")),
            "syncs:busy": Count("id", filter=Q(error_class="busy")),
            "syncs:stopped": Count("id", filter=Q(error_class="stopped")),
            "syncs:error": Count("id", filter=~Q(error_class__in=NOT_AN_ERROR)),
            "fetched": Coalesce(Sum("fetched"), 0),
            "bytes": Coalesce(Sum("bytes"), 0),
            "duration_count": Count("id"),
            "duration_sum": Sum("duration"),
        },
        **buckets,
    )
    totals = {name: float(value) for name, value in row.items() if name != "duration_sum"}
    totals["duration_sum"] = _seconds(row["duration_sum"])
    errors = finished.exclude(error_class__in=NOT_AN_ERROR).order_by().values("error_class").annotate(n=Count("id"))
    for item in errors:
        totals[f"errors:{item['error_class']}"] = float(item["n"])
    return totals


def _abandoned_before(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=2 * settings.WEBPOP_SYNC_LEASE_SECONDS)


def watermark() -> int:
    row = MetricTotal.objects.filter(name=WATERMARK).values_list("value", flat=True).first()
    return int(row or 0)


@transaction.atomic
def fold(now: dt.datetime | None = None, batch: int = 10_000) -> int:
    """Add finished runs above the watermark into the totals; returns how many runs were folded."""
    now = now or timezone.now()
    MetricTotal.objects.get_or_create(name=WATERMARK)
    mark_row = MetricTotal.objects.select_for_update().get(name=WATERMARK)  # one fold at a time
    mark = int(mark_row.value)
    abandoned = _abandoned_before(now)
    # A run inserted just now may still be invisible to us below a visible higher id: stay a
    # minute behind so that no id is ever skipped.
    settled = now - SETTLE
    upto = mark
    for run_id, finished_at, started_at in (
        SyncRun.objects.filter(id__gt=mark).order_by("id").values_list("id", "finished_at", "started_at")[:batch]
    ):
        if started_at > settled or (finished_at is None and started_at > abandoned):
            break  # fold it once it has finished (or was abandoned by a killed worker)
        upto = run_id
    if upto == mark:
        return 0
    runs = SyncRun.objects.filter(id__gt=mark, id__lte=upto)
    for name, value in aggregate(runs).items():
        if value:
            MetricTotal.objects.get_or_create(name=name)
            MetricTotal.objects.filter(name=name).update(value=F("value") + value)
    folded = runs.count()
    MetricTotal.objects.filter(name=WATERMARK).update(value=upto)
    return folded


def current() -> dict[str, float]:
    """Totals over every SyncRun ever recorded: the folded totals plus the rows above the watermark."""
    totals = {name: value for name, value in MetricTotal.objects.values_list("name", "value") if name != WATERMARK}
    for name, value in aggregate(SyncRun.objects.filter(id__gt=watermark())).items():
        totals[name] = totals.get(name, 0.0) + value
    return totals


def running(now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    return SyncRun.objects.filter(finished_at__isnull=True, started_at__gt=_abandoned_before(now)).count()


def prune(days: int, now: dt.datetime | None = None, batch: int = 10_000) -> int:
    """Delete SyncRun rows older than ``days`` that are already folded into the totals."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    mark = watermark()
    deleted = 0
    while True:
        ids = list(
            SyncRun.objects.filter(id__lte=mark, started_at__lt=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += SyncRun.objects.filter(id__in=ids).delete()[0]
