"""Prometheus text exposition (format 0.0.4) computed from the database and the broker.

Sync counters and the duration histogram come from ops/totals.py (running totals
plus the most recent SyncRun rows), so every web process reports the same numbers
and a scrape stays cheap however long the history is.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone

from spam import health as spam_health

from . import disk, heartbeats, queue, stats, totals

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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


def render() -> str:
    lines: list[str] = []
    total = totals.current()
    lines += _family(
        "webpop_syncs_total",
        "counter",
        "Syncs of POP3 accounts by result.",
        [_sample("webpop_syncs_total", total.get(f"syncs:{r}", 0), {"result": r}) for r in ("ok", "error", "busy")],
    )
    lines += _family(
        "webpop_syncs_running",
        "gauge",
        "Syncs started and not finished.",
        [_sample("webpop_syncs_running", totals.running())],
    )
    error_classes = sorted(name.split(":", 1)[1] for name in total if name.startswith("errors:"))
    lines += _family(
        "webpop_sync_errors_total",
        "counter",
        "Failed syncs by error class.",
        [_sample("webpop_sync_errors_total", total[f"errors:{c}"], {"class": c}) for c in error_classes],
    )
    lines += _family(
        "webpop_messages_fetched_total",
        "counter",
        "Messages fetched and stored by syncs.",
        [_sample("webpop_messages_fetched_total", total.get("fetched", 0))],
    )
    lines += _family(
        "webpop_fetched_bytes_total",
        "counter",
        "Bytes of messages fetched by syncs.",
        [_sample("webpop_fetched_bytes_total", total.get("bytes", 0))],
    )
    samples = [
        _sample("webpop_sync_duration_seconds_bucket", total.get(f"duration_le:{bound:g}", 0), {"le": f"{bound:g}"})
        for bound in totals.DURATION_BUCKETS
    ]
    samples += [
        _sample("webpop_sync_duration_seconds_bucket", total.get("duration_count", 0), {"le": "+Inf"}),
        _sample("webpop_sync_duration_seconds_sum", float(total.get("duration_sum", 0.0))),
        _sample("webpop_sync_duration_seconds_count", total.get("duration_count", 0)),
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
    lines += _family(
        "webpop_damaged_files",
        "gauge",
        "Stored files found missing or corrupt (manage.py verifystore --repair).",
        [_sample("webpop_damaged_files", n, {"kind": kind}) for kind, n in stats.damaged_counts().items()],
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
    lines += _spam_families()
    lines += _disk_families()
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


def _spam_families() -> list[str]:
    """Spam filtering (spam/): running totals from the hourly rows, the backlog, and rspamd's last answer."""
    total = spam_health.totals()
    backlog = spam_health.backlog()
    lines = _family(
        "webpop_spam_scanned_total",
        "counter",
        "New messages judged by a spam filter (rspamd or the provider's headers).",
        [_sample("webpop_spam_scanned_total", total.scanned)],
    )
    lines += _family(
        "webpop_spam_verdicts_total",
        "counter",
        "Messages moved to Spam or marked probably spam by the filter.",
        [
            _sample("webpop_spam_verdicts_total", total.spam, {"verdict": "spam"}),
            _sample("webpop_spam_verdicts_total", total.probable, {"verdict": "probable"}),
        ],
    )
    lines += _family(
        "webpop_spam_scan_failures_total",
        "counter",
        "Scans that failed (each is tried again).",
        [_sample("webpop_spam_scan_failures_total", total.failed)],
    )
    lines += _family(
        "webpop_spam_learned_total",
        "counter",
        "Messages rspamd learned from as users marked them Spam or Not spam.",
        [_sample("webpop_spam_learned_total", total.learned)],
    )
    lines += _family(
        "webpop_spam_scan_seconds_total",
        "counter",
        "Time of rspamd scans, summed: rspamd's own, and the whole request as webpop saw it.",
        [
            _sample("webpop_spam_scan_seconds_total", float(total.rspamd_seconds), {"side": "rspamd"}),
            _sample("webpop_spam_scan_seconds_total", float(total.request_seconds), {"side": "request"}),
        ],
    )
    lines += _family(
        "webpop_spam_rspamd_scans_total",
        "counter",
        "Scans by rspamd (the count for webpop_spam_scan_seconds_total).",
        [_sample("webpop_spam_rspamd_scans_total", total.rspamd_scans)],
    )
    lines += _family(
        "webpop_spam_pending",
        "gauge",
        "Scans and training waiting to be done.",
        [
            _sample("webpop_spam_pending", backlog.scans, {"work": "scan"}),
            _sample("webpop_spam_pending", backlog.learns, {"work": "learn"}),
        ],
    )
    oldest = [] if backlog.oldest_scan is None else [(timezone.now() - backlog.oldest_scan).total_seconds()]
    lines += _family(
        "webpop_spam_oldest_pending_scan_seconds",
        "gauge",
        "Age of the oldest message waiting for its scan (absent when none waits).",
        [_sample("webpop_spam_oldest_pending_scan_seconds", age) for age in oldest],
    )
    state = spam_health.rspamd_health() if settings.WEBPOP_RSPAMD_URL else None
    lines += _family(
        "webpop_rspamd_up",
        "gauge",
        "1 when rspamd answered the last time it was asked (absent without rspamd, or before it is asked).",
        [] if state is None else [_sample("webpop_rspamd_up", 0 if state.failing_since else 1)],
    )
    latency = [] if state is None or state.latency_seconds is None else [float(state.latency_seconds)]
    lines += _family(
        "webpop_rspamd_latency_seconds",
        "gauge",
        "How long rspamd took to answer the last time it answered.",
        [_sample("webpop_rspamd_latency_seconds", value) for value in latency],
    )
    return lines


def _disk_families() -> list[str]:
    disks = disk.volumes()
    labels = [{"place": ",".join(v.names), "path": v.path} for v in disks]
    return [
        *_family(
            "webpop_disk_free_bytes",
            "gauge",
            "Free bytes on the file systems of the mail store and the temp folder.",
            [_sample("webpop_disk_free_bytes", v.free_bytes, label) for v, label in zip(disks, labels, strict=True)],
        ),
        *_family(
            "webpop_disk_size_bytes",
            "gauge",
            "Size of those file systems.",
            [_sample("webpop_disk_size_bytes", v.total_bytes, label) for v, label in zip(disks, labels, strict=True)],
        ),
        *_family(
            "webpop_disk_low",
            "gauge",
            "1 when free space is below the alert threshold (WEBPOP_DISK_ALERT_FREE_PERCENT / _MB).",
            [_sample("webpop_disk_low", int(v.low), label) for v, label in zip(disks, labels, strict=True)],
        ),
    ]
