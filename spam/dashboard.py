"""Spam filtering on the operators' dashboard and in /metrics: a constant number of queries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from accounts.models import MailAccount

from . import filtering, health
from .models import ServiceHealth

# Mail waiting this long for its scan is worth an alert even while rspamd answers (workers too few or stuck).
LATE = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Summary:
    configured: bool
    where: str  # rspamd's host:port
    provider_accounts: int  # accounts that trust their provider's verdict (what counts without rspamd)
    health: ServiceHealth | None
    controller: ServiceHealth | None  # rspamd's controller, which learns
    backlog: health.Backlog
    last_hour: health.Counts
    day: health.Counts
    hourly: list[tuple[dt.datetime, health.Counts]]
    now: dt.datetime

    @property
    def down(self) -> bool:
        return self.configured and self.health is not None and self.health.failing_since is not None

    @property
    def training_down(self) -> bool:
        return self.configured and self.controller is not None and self.controller.failing_since is not None

    @property
    def late(self) -> bool:
        oldest = self.backlog.oldest_scan
        return oldest is not None and self.now - oldest > LATE

    @property
    def alert(self) -> bool:
        return self.down or (self.configured and self.late)

    @property
    def spam_percent(self) -> float | None:
        """Of the last 24 hours' scans, the share judged spam or probably spam."""
        if not self.day.scanned:
            return None
        return 100.0 * (self.day.spam + self.day.probable) / self.day.scanned

    @property
    def rspamd_ms(self) -> float | None:
        """rspamd's own time per scan over the last 24 hours."""
        return 1000.0 * self.day.rspamd_seconds / self.day.rspamd_scans if self.day.rspamd_scans else None

    @property
    def request_ms(self) -> float | None:
        """The whole request per scan, as webpop saw it, over the last 24 hours."""
        return 1000.0 * self.day.request_seconds / self.day.rspamd_scans if self.day.rspamd_scans else None

    @property
    def latency_ms(self) -> float | None:
        if self.health is None or self.health.latency_seconds is None:
            return None
        return 1000.0 * self.health.latency_seconds


def summary(now: dt.datetime | None = None) -> Summary:
    now = now or timezone.now()
    hourly = health.hourly(24, now)
    day = health.Counts()
    for _hour, counts in hourly:
        day.add(counts)
    configured = filtering.rspamd_configured()
    return Summary(
        configured=configured,
        where=urlsplit(settings.WEBPOP_RSPAMD_URL).netloc if configured else "",
        provider_accounts=MailAccount.objects.filter(spam_trust_provider=True).count(),
        health=health.rspamd_health() if configured else None,
        controller=health.controller_health() if configured else None,
        backlog=health.backlog(),
        last_hour=hourly[-1][1],
        day=day,
        hourly=hourly,
        now=now,
    )
