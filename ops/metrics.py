"""Prometheus text exposition (format 0.0.4) computed from the database and the broker.

Counters are totals over the SyncRun history kept in the database; the
histogram of sync durations is computed in one aggregate query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from mailbox.models import SyncRun

from . import heartbeats, queue, stats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
        name = f"{name}{{{inner}}}"
    if isinstance(value, float) and not value.is_integer():
        text = repr(value)
    else:
        text = str(int(value))
    return f"{name} {text}"


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def sync_duration_histogram() -> dict:
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    aggregates = {
        f"le_{i}": Count("id", filter=Q(duration__lte=dt.timedelta(seconds=bound)))
        for i, bound in enumerate(DURATION_BUCKETS)
    }
    row = (
        SyncRun.objects.filter(finished_at__isnull=False)
        .annotate(duration=duration)
        .aggregate(count=Count("id"), total=Sum("duration"), **aggregates)
    )
    return {
        "buckets": [(bound, row[f"le_{i}"]) for i, bound in enumerate(DURATION_BUCKETS)],
        "count": row["count"],
        "sum": stats._seconds(row["total"]),
    }


def render() -> str:
    lines: list[str] = []
    by_result = SyncRun.objects.aggregate(
        ok=Count("id", filter=Q(error_class="", finished_at__isnull=False)),
        busy=Count("id", filter=Q(error_class="busy")),
        error=Count("id", filter=~Q(error_class__in=stats.NOT_AN_ERROR)),
        running=Count("id", filter=Q(finished_at__isnull=True)),
        fetched=Coalesce(Sum("fetched"), 0),
        fetched_bytes=Coalesce(Sum("bytes"), 0),
    )
    lines += _family(
        "webpop_syncs_total",
        "counter",
        "Syncs of POP3 accounts by result.",
        [_sample("webpop_syncs_total", by_result[r], {"result": r}) for r in ("ok", "error", "busy")],
    )
    lines += _family(
        "webpop_syncs_running",
        "gauge",
        "Syncs started and not finished.",
        [_sample("webpop_syncs_running", by_result["running"])],
    )
    errors = (
        SyncRun.objects.exclude(error_class__in=stats.NOT_AN_ERROR)
        .order_by()
        .values("error_class")
        .annotate(n=Count("id"))
        .order_by("error_class")
    )
    lines += _family(
        "webpop_sync_errors_total",
        "counter",
        "Failed syncs by error class.",
        [_sample("webpop_sync_errors_total", row["n"], {"class": row["error_class"]}) for row in errors],
    )
    lines += _family(
        "webpop_messages_fetched_total",
        "counter",
        "Messages fetched and stored by syncs.",
        [_sample("webpop_messages_fetched_total", by_result["fetched"])],
    )
    lines += _family(
        "webpop_fetched_bytes_total",
        "counter",
        "Bytes of messages fetched by syncs.",
        [_sample("webpop_fetched_bytes_total", by_result["fetched_bytes"])],
    )
    histogram = sync_duration_histogram()
    samples = [
        _sample("webpop_sync_duration_seconds_bucket", count, {"le": f"{bound:g}"})
        for bound, count in histogram["buckets"]
    ]
    samples += [
        _sample("webpop_sync_duration_seconds_bucket", histogram["count"], {"le": "+Inf"}),
        _sample("webpop_sync_duration_seconds_sum", float(histogram["sum"])),
        _sample("webpop_sync_duration_seconds_count", histogram["count"]),
    ]
    lines += _family("webpop_sync_duration_seconds", "histogram", "Duration of finished syncs.", samples)
    depth = queue.queue_depth()
    lines += _family(
        "webpop_queue_depth",
        "gauge",
        "Tasks waiting in the Celery queue (absent when the broker cannot be asked).",
        [] if depth is None else [_sample("webpop_queue_depth", depth, {"queue": queue.QUEUE})],
    )
    lines += _family(
        "webpop_accounts",
        "gauge",
        "POP3 accounts by health.",
        [_sample("webpop_accounts", n, {"health": health}) for health, n in stats.health_counts().items()],
    )
    lines += _family(
        "webpop_quarantined_messages",
        "gauge",
        "Messages quarantined after repeated failures.",
        [_sample("webpop_quarantined_messages", stats.quarantined_count())],
    )
    users = stats.user_counts()
    lines += _family(
        "webpop_users",
        "gauge",
        "Users by state.",
        [
            _sample("webpop_users", users["active"], {"state": "active"}),
            _sample("webpop_users", users["total"] - users["active"], {"state": "disabled"}),
        ],
    )
    storage = stats.total_storage()
    lines += _family(
        "webpop_stored_bytes",
        "gauge",
        "Bytes of mail stored (raw messages).",
        [_sample("webpop_stored_bytes", storage["bytes"])],
    )
    lines += _family(
        "webpop_stored_messages", "gauge", "Messages stored.", [_sample("webpop_stored_messages", storage["messages"])]
    )
    now = timezone.now()
    workers = heartbeats.workers(now)
    lines += _family(
        "webpop_worker_last_seen_timestamp_seconds",
        "gauge",
        "Unix time of each Celery worker's last heartbeat.",
        [
            _sample("webpop_worker_last_seen_timestamp_seconds", w.last_seen_at.timestamp(), {"worker": w.hostname})
            for w in workers
        ],
    )
    lines += _family(
        "webpop_workers_alive",
        "gauge",
        "Celery workers whose heartbeat is current.",
        [_sample("webpop_workers_alive", sum(1 for w in workers if w.state == "alive"))],
    )
    return "\n".join(lines) + "\n"
