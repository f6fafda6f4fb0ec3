"""The numbers behind the dashboard: account health, hourly activity, storage, and chart geometry."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from accounts.models import MailAccount, Profile
from mailbox.models import FetchFailure, SyncRun
from ops import charts, stats, storage
from tests.factories import build_message, make_account, store_message

NOW = dt.datetime(2026, 11, 26, 9, 40, tzinfo=dt.UTC)


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (10, 10), (11, 20), (141, 200)])
def test_axis_maxima_are_round(value, ceiling):
    assert charts.nice_ceiling(value) == ceiling


def test_bars_scale_to_the_axis_and_fill_the_plot():
    start = dt.datetime(2026, 11, 26, 0, tzinfo=dt.UTC)
    points = [(start + dt.timedelta(hours=h), v) for h, v in enumerate([0, 5, 10, 2])]
    chart = charts.hourly_chart(points, width=440, height=130)
    plot_height = chart.plot_bottom - 8
    assert [bar.height for bar in chart.bars] == [0, plot_height / 2, plot_height, plot_height / 5]
    assert all(bar.y + bar.height == pytest.approx(chart.plot_bottom) for bar in chart.bars)
    assert chart.bars[0].x >= chart.plot_left and chart.bars[-1].x + chart.bars[-1].width <= 440
    assert [tick.text for tick in chart.y_ticks] == ["0", "5", "10"]
    assert (chart.total, chart.peak) == (17, 10)
    assert [tick.text for tick in chart.x_ticks] == ["00:00", "03:00"]


def test_day_ticks_fall_on_local_midnight():
    start = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    points = [(start + dt.timedelta(hours=h), 1) for h in range(48)]
    with timezone.override(zoneinfo.ZoneInfo("Europe/Berlin")):  # UTC+1: midnight is 23:00 UTC
        chart = charts.hourly_chart(points, daily_ticks=True)
    assert [tick.text for tick in chart.x_ticks] == ["Wed 25", "Thu 26"]


@pytest.mark.django_db
def test_hourly_activity_counts_syncs_errors_and_messages_per_utc_hour(alice):
    account = make_account(alice)
    runs = [(5, 3, ""), (35, 2, ""), (39, 0, "timeout"), (41, 0, "busy"), (99, 4, "")]
    for minutes_ago, fetched, error_class in runs:
        started = NOW - dt.timedelta(minutes=minutes_ago)
        SyncRun.objects.create(account=account, started_at=started, fetched=fetched, error_class=error_class)
    SyncRun.objects.create(account=account, started_at=NOW - dt.timedelta(hours=30), fetched=50)  # outside 24 h
    buckets = stats.hourly_activity(24, NOW)
    assert len(buckets) == 24
    assert buckets[-1].start == dt.datetime(2026, 11, 26, 9, tzinfo=dt.UTC)
    assert (buckets[-1].syncs, buckets[-1].errors, buckets[-1].fetched) == (3, 1, 5)  # 09:05, 09:01, 09:35
    # 08:59 (busy: another sync ran, not an error) and 08:01.
    assert (buckets[-2].syncs, buckets[-2].errors, buckets[-2].fetched) == (2, 0, 4)
    assert all(b.syncs == 0 for b in buckets[:-2])
    assert sum(b.fetched for b in buckets) == 9
    assert sum(b.fetched for b in stats.hourly_activity(24 * 7, NOW)) == 59


@pytest.mark.django_db
def test_health_puts_what_needs_a_person_first(alice):
    def account(**fields) -> MailAccount:
        made = make_account(alice, username=f"u{MailAccount.objects.count()}")
        MailAccount.objects.filter(id=made.id).update(**fields)
        return made

    ok = account(last_success_at=NOW)
    new = account()
    auth = account(last_error_class="auth", last_success_at=NOW)
    tls = account(last_error_class="tls")
    temporary = account(last_error_class="timeout")
    paused = account(enabled=False, last_error_class="auth")
    quarantine = account(last_success_at=NOW)
    FetchFailure.objects.create(account=quarantine, uidl="x", quarantined_at=NOW)
    FetchFailure.objects.create(account=ok, uidl="y", attempts=1)  # still being retried: not quarantined
    health = dict(stats.with_health(MailAccount.objects.all()).values_list("id", "health"))
    assert health == {
        ok.id: "ok", new.id: "new", auth.id: "auth", tls.id: "auth", temporary.id: "error",
        paused.id: "paused", quarantine.id: "quarantine",
    }  # fmt: skip
    assert stats.health_counts() == {"auth": 2, "error": 1, "quarantine": 1, "paused": 1, "new": 1, "ok": 1}


@pytest.mark.django_db
def test_storage_per_user_is_the_counted_message_sizes_biggest_first(alice, bob, settings):
    settings.WEBPOP_DEFAULT_QUOTA_MB = 10
    alice_account, bob_account = make_account(alice), make_account(bob)
    small = store_message(alice_account, build_message("small"), "a1")
    big = [store_message(bob_account, build_message(f"big {i}", "x" * 5000), f"b{i}") for i in range(2)]
    Profile.objects.update_or_create(user=alice, defaults={"storage_quota_bytes": 1000})
    storage.count(pause=0)  # the beat job counting stored mail
    rows = stats.users_by_storage()
    assert [(r.username, r.accounts, r.messages, r.bytes) for r in rows] == [
        ("bob", 1, 2, sum(m.size for m in big)),
        ("alice", 1, 1, small.size),
    ]
    assert (rows[0].quota_bytes, rows[1].quota_bytes) == (10 * 1024 * 1024, 1000)
    assert [r.username for r in stats.users_by_storage(q="ali")] == ["alice"]


@pytest.mark.django_db
def test_slowest_servers_rank_hosts_by_average_sync_time(alice):
    def runs(host: str, *seconds: float) -> None:
        account = make_account(alice, host=host, username=host)
        for s in seconds:
            SyncRun.objects.create(account=account, started_at=NOW, finished_at=NOW + dt.timedelta(seconds=s))

    runs("quick.example", 1, 1)
    runs("slow.example", 10, 30)
    runs("middle.example", 5)
    SyncRun.objects.create(account=MailAccount.objects.first(), started_at=NOW)  # still running: left out
    ranked = stats.slowest_servers(NOW - dt.timedelta(days=1))
    assert [(s.host, s.avg_seconds, s.max_seconds, s.syncs) for s in ranked] == [
        ("slow.example", 20.0, 30.0, 2),
        ("middle.example", 5.0, 5.0, 1),
        ("quick.example", 1.0, 1.0, 2),
    ]
