"""Prometheus exposition (prometheus_client) of numbers read from the database, the cache and the broker.

Nothing is counted in process memory: a custom collector asks at scrape time, so every web process reports
the same numbers. Sync counters and the duration histogram come from ops/totals.py (running totals plus the
most recent SyncRun rows), so a scrape stays cheap however long the history is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from django.conf import settings
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from spam import health as spam_health

from . import disk, heartbeats, queue, stats, totals

# The classic text format: what generate_latest writes for our (plain ASCII) names, and what prometheus_client
# answers a scraper that asks for no particular version.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

Samples = Mapping[tuple[str, ...], float]


def _family(kind: str, name: str, help_text: str, value: float | None = None, /, **by: Samples) -> Metric:
    """One family: a single ``value`` (None: no sample), or ``by={label: {(label value,): value}}``."""
    family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, help_text, labels=list(by))
    if value is not None:
        family.add_metric([], value)
    for label_values, sample in next(iter(by.values()), {}).items():
        family.add_metric(list(label_values), sample)
    return family


def _each(values: Mapping[str, float]) -> Samples:
    return {(key,): value for key, value in values.items()}


def _syncs() -> Iterator[Metric]:
    total = totals.current()
    results = {r: total.get(f"syncs:{r}", 0) for r in ("ok", "error", "busy", "stopped")}
    yield _family("counter", "webpop_syncs_total", "Syncs of POP3 accounts by result.", result=_each(results))
    yield _family("gauge", "webpop_syncs_running", "Syncs started and not finished.", totals.running())
    errors = {name.split(":", 1)[1]: n for name, n in sorted(total.items()) if name.startswith("errors:")}
    yield _family("counter", "webpop_sync_errors_total", "Failed syncs by error class.", **{"class": _each(errors)})
    yield _family(
        "counter", "webpop_messages_fetched_total", "Messages fetched and stored by syncs.", total.get("fetched", 0)
    )
    yield _family("counter", "webpop_fetched_bytes_total", "Bytes of messages fetched by syncs.", total.get("bytes", 0))
    buckets = [(f"{bound:g}", total.get(f"duration_le:{bound:g}", 0)) for bound in totals.DURATION_BUCKETS]
    yield HistogramMetricFamily(
        "webpop_sync_duration_seconds",
        "Duration of finished syncs.",
        buckets=[*buckets, ("+Inf", total.get("duration_count", 0))],
        sum_value=float(total.get("duration_sum", 0.0)),
    )


def _state() -> Iterator[Metric]:
    depth = queue.queue_depth()
    yield _family(
        "gauge",
        "webpop_queue_depth",
        "Tasks waiting in the Celery queue (absent when the broker cannot be asked).",
        queue={} if depth is None else {(queue.QUEUE,): depth},
    )
    yield _family("gauge", "webpop_accounts", "POP3 accounts by health.", health=_each(stats.health_counts()))
    yield _family(
        "gauge",
        "webpop_quarantined_messages",
        "Messages quarantined after repeated failures.",
        stats.quarantined_count(),
    )
    yield _family(
        "gauge",
        "webpop_damaged_files",
        "Stored files found missing or corrupt (manage.py verifystore --repair).",
        kind=_each(stats.damaged_counts()),
    )
    users = stats.user_counts()
    by_state = {"active": users["active"], "disabled": users["total"] - users["active"]}
    yield _family("gauge", "webpop_users", "Users by state.", state=_each(by_state))
    storage = stats.total_storage()
    yield _family("gauge", "webpop_stored_bytes", "Bytes of mail stored (raw messages).", storage["bytes"])
    yield _family("gauge", "webpop_stored_messages", "Messages stored.", storage["messages"])


def _spam() -> Iterator[Metric]:
    """Spam filtering (spam/): running totals from the hourly rows, the backlog, and rspamd's last answer."""
    total = spam_health.totals()
    backlog = spam_health.backlog()
    for name, help_text, value in (
        ("scanned", "New messages judged by a spam filter (rspamd or the provider's headers).", total.scanned),
        ("scan_failures", "Scans that failed (each is tried again).", total.failed),
        ("learned", "Messages rspamd learned from as users marked them Spam or Not spam.", total.learned),
        ("rspamd_scans", "Scans by rspamd (the count for webpop_spam_scan_seconds_total).", total.rspamd_scans),
    ):
        yield _family("counter", f"webpop_spam_{name}_total", help_text, value)
    yield _family(
        "counter",
        "webpop_spam_verdicts_total",
        "Messages moved to Spam or marked probably spam by the filter.",
        verdict=_each({"spam": total.spam, "probable": total.probable}),
    )
    seconds = {"rspamd": float(total.rspamd_seconds), "request": float(total.request_seconds)}
    yield _family(
        "counter",
        "webpop_spam_scan_seconds_total",
        "Time of rspamd scans, summed: rspamd's own, and the whole request as webpop saw it.",
        side=_each(seconds),
    )
    pending = {"scan": backlog.scans, "learn": backlog.learns}
    yield _family("gauge", "webpop_spam_pending", "Scans and training waiting to be done.", work=_each(pending))
    oldest = None if backlog.oldest_scan is None else (timezone.now() - backlog.oldest_scan).total_seconds()
    yield _family(
        "gauge",
        "webpop_spam_oldest_pending_scan_seconds",
        "Age of the oldest message waiting for its scan (absent when none waits).",
        oldest,
    )
    state = spam_health.rspamd_health() if settings.WEBPOP_RSPAMD_URL else None
    yield _family(
        "gauge",
        "webpop_rspamd_up",
        "1 when rspamd answered the last time it was asked (absent without rspamd, or before it is asked).",
        None if state is None else (0 if state.failing_since else 1),
    )
    latency = None if state is None or state.latency_seconds is None else float(state.latency_seconds)
    yield _family(
        "gauge", "webpop_rspamd_latency_seconds", "How long rspamd took to answer the last time it answered.", latency
    )


def _disks() -> Iterator[Metric]:
    volumes = disk.volumes()

    def per_volume(name: str, help_text: str, value: Iterable[float]) -> Metric:
        family = GaugeMetricFamily(name, help_text, labels=["place", "path"])
        for volume, sample in zip(volumes, value, strict=True):
            family.add_metric([",".join(volume.names), volume.path], sample)
        return family

    yield per_volume(
        "webpop_disk_free_bytes",
        "Free bytes on the file systems of the mail store and the temp folder.",
        [v.free_bytes for v in volumes],
    )
    yield per_volume("webpop_disk_size_bytes", "Size of those file systems.", [v.total_bytes for v in volumes])
    yield per_volume(
        "webpop_disk_low",
        "1 when free space is below the alert threshold (WEBPOP_DISK_ALERT_FREE_PERCENT / _MB).",
        [int(v.low) for v in volumes],
    )


def _workers() -> Iterator[Metric]:
    workers = heartbeats.workers(timezone.now())
    yield _family(
        "gauge",
        "webpop_worker_last_seen_timestamp_seconds",
        "Unix time of each Celery worker's last heartbeat.",
        worker={(w.hostname,): w.last_seen_at.timestamp() for w in workers},
    )
    alive = sum(1 for w in workers if w.state == "alive")
    yield _family("gauge", "webpop_workers_alive", "Celery workers whose heartbeat is current.", alive)


class WebpopCollector:
    """Reads everything when scraped (prometheus_client's custom collector protocol)."""

    def collect(self) -> Iterator[Metric]:
        for part in (_syncs, _state, _spam, _disks, _workers):
            yield from part()


# Our own registry: none of prometheus_client's process metrics, which would describe one web process only.
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(WebpopCollector())


def render() -> str:
    return generate_latest(REGISTRY).decode()
