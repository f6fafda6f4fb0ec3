"""What the dashboard and /metrics show, each a constant number of queries (no N+1).

None reads the whole message table: storage figures come from the totals a beat job counts (ops/storage.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import ErrorClass, MailAccount
from mailbox.models import DamagedFile, FetchFailure, SyncRun

from . import storage
from .models import StorageTotal

# Account health, most urgent first. "auth": the user must act (password, certificate);
# "error": webpop keeps retrying by itself; "quarantine": syncs work but some messages fail.
HEALTH = {
    "auth": _("Authentication error"),
    "error": _("Temporary error"),
    "quarantine": _("Quarantined messages"),
    "paused": _("Paused"),
    "new": _("Not synced yet"),
    "ok": _("OK"),
}
AUTH_CLASSES = ("auth", "credentials", "tls")
ERROR_LABELS = dict(ErrorClass.choices)
NOT_AN_ERROR = ("", "busy", "stopped")  # "busy": another sync of the account ran; "stopped": its worker stopped


def with_health(accounts: QuerySet[MailAccount]) -> QuerySet[MailAccount]:
    """Annotate ``health`` (a HEALTH key) and ``quarantined`` (count) in the same query."""
    quarantined = FetchFailure.objects.filter(account=OuterRef("pk"), quarantined_at__isnull=False)
    return accounts.annotate(
        has_quarantine=Exists(quarantined),
        health=Case(
            When(enabled=False, then=Value("paused")),
            When(last_error_class__in=AUTH_CLASSES, then=Value("auth")),
            When(~Q(last_error_class=""), then=Value("error")),
            When(has_quarantine=True, then=Value("quarantine")),
            When(last_success_at__isnull=True, then=Value("new")),
            default=Value("ok"),
            output_field=CharField(),
        ),
    )


def health_counts() -> dict[str, int]:
    counts = dict.fromkeys(HEALTH, 0)
    for row in with_health(MailAccount.objects.all()).order_by().values("health").annotate(n=Count("id")):
        counts[row["health"]] = row["n"]
    return counts


def user_counts() -> dict[str, int]:
    User = get_user_model()
    return User.objects.aggregate(
        total=Count("id"), active=Count("id", filter=Q(is_active=True)), staff=Count("id", filter=Q(is_staff=True))
    )


# --- Activity over time ---------------------------------------------------------


@dataclass(frozen=True)
class HourBucket:
    start: dt.datetime
    syncs: int
    errors: int
    fetched: int


def _hour_floor(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def hourly_activity(hours: int, now: dt.datetime | None = None) -> list[HourBucket]:
    """Syncs, failed syncs and messages ingested per hour for the last ``hours`` hours (oldest first)."""
    end = _hour_floor(now or timezone.now())
    start = end - dt.timedelta(hours=hours - 1)
    rows = (
        SyncRun.objects.filter(started_at__gte=start)
        .annotate(hour=TruncHour("started_at", tzinfo=dt.UTC))
        .order_by()
        .values("hour")
        .annotate(
            syncs=Count("id"),
            errors=Count("id", filter=~Q(error_class__in=NOT_AN_ERROR)),
            fetched=Coalesce(Sum("fetched"), 0),
        )
    )
    by_hour = {_hour_floor(row["hour"]): row for row in rows}
    buckets = []
    for i in range(hours):
        hour = start + dt.timedelta(hours=i)
        row = by_hour.get(hour, {})
        buckets.append(HourBucket(hour, row.get("syncs", 0), row.get("errors", 0), row.get("fetched", 0)))
    return buckets


@dataclass(frozen=True)
class ErrorCount:
    error_class: str
    label: str
    count: int


def errors_by_class(since: dt.datetime) -> list[ErrorCount]:
    rows = (
        SyncRun.objects.filter(started_at__gte=since)
        .exclude(error_class__in=NOT_AN_ERROR)
        .order_by()
        .values("error_class")
        .annotate(n=Count("id"))
        .order_by("-n", "error_class")
    )
    return [
        ErrorCount(r["error_class"], str(ERROR_LABELS.get(r["error_class"], r["error_class"])), r["n"]) for r in rows
    ]


# --- Servers, storage, quarantine -------------------------------------------------

_DURATION = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())


@dataclass(frozen=True)
class ServerTiming:
    host: str
    syncs: int
    avg_seconds: float
    max_seconds: float
    accounts: int


def slowest_servers(since: dt.datetime, limit: int = 10) -> list[ServerTiming]:
    rows = (
        SyncRun.objects.filter(started_at__gte=since, finished_at__isnull=False)
        .annotate(duration=_DURATION)
        .order_by()
        .values("account__host")
        .annotate(n=Count("id"), avg=Avg("duration"), longest=Max("duration"), accounts=Count("account", distinct=True))
        .order_by("-avg")[:limit]
    )
    return [
        ServerTiming(r["account__host"], r["n"], _seconds(r["avg"]), _seconds(r["longest"]), r["accounts"])
        for r in rows
    ]


def _seconds(value) -> float:
    if value is None:
        return 0.0
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000  # some backends average durations as microseconds


@dataclass(frozen=True)
class UserStorage:
    user_id: int
    username: str
    is_active: bool
    is_staff: bool
    is_superuser: bool
    accounts: int
    messages: int
    bytes: int
    quota_bytes: int | None


def users_with_storage(q: str = "") -> QuerySet:
    """Users with the most mail stored first (as dicts), from the totals counted by ops/storage.py."""
    User = get_user_model()
    accounts = MailAccount.objects.filter(owner=OuterRef("pk")).order_by().values("owner").annotate(n=Count("id"))
    users = User.objects.all()
    if q:
        users = users.filter(Q(username__icontains=q) | Q(email__icontains=q))
    return (
        users.annotate(
            stored=Coalesce(F("storage_total__bytes"), 0),
            n_messages=Coalesce(F("storage_total__messages"), 0),
            n_accounts=Coalesce(accounts.values("n"), 0),
            quota=F("profile__storage_quota_bytes"),
        )
        .order_by("-stored", "username")
        .values(
            "id", "username", "is_active", "is_staff", "is_superuser", "stored", "n_messages", "n_accounts", "quota"
        )
    )


def storage_rows(rows) -> list[UserStorage]:
    default_quota = settings.WEBPOP_DEFAULT_QUOTA_MB * 1024 * 1024 or None
    return [
        UserStorage(
            r["id"],
            r["username"],
            r["is_active"],
            r["is_staff"],
            r["is_superuser"],
            r["n_accounts"],
            r["n_messages"],
            r["stored"],
            r["quota"] if r["quota"] is not None else default_quota,
        )
        for r in rows
    ]


def users_by_storage(limit: int = 50, q: str = "") -> list[UserStorage]:
    return storage_rows(users_with_storage(q)[:limit])


def total_storage() -> dict:
    """The host's stored mail as last counted (``as_of``: when; None before the first count)."""
    totals = StorageTotal.objects.aggregate(messages=Coalesce(Sum("messages"), 0), bytes=Coalesce(Sum("bytes"), 0))
    return totals | {"as_of": storage.as_of()}


def quarantined(limit: int = 50) -> QuerySet[FetchFailure]:
    return (
        FetchFailure.objects.filter(quarantined_at__isnull=False)
        .select_related("account", "account__owner")
        .order_by("-quarantined_at")[:limit]
    )


def quarantined_count() -> int:
    return FetchFailure.objects.filter(quarantined_at__isnull=False).count()


def damaged_counts() -> dict[str, int]:
    """Stored files marked missing or corrupt (mailbox/damage.py), by kind."""
    counts = dict.fromkeys(DamagedFile.Kind.values, 0)
    counts.update(DamagedFile.objects.values_list("kind").annotate(n=Count("id")).values_list("kind", "n"))
    return counts


def accounts_list(*, health: str = "", q: str = "") -> QuerySet[MailAccount]:
    accounts = with_health(MailAccount.objects.select_related("owner")).order_by("owner__username", "id")
    if health in HEALTH:
        accounts = accounts.filter(health=health)
    if q:
        accounts = accounts.filter(
            Q(host__icontains=q) | Q(username__icontains=q) | Q(label__icontains=q) | Q(owner__username__icontains=q)
        )
    return accounts
