"""Sync totals for /metrics: folded into running totals so old history can go without counters going back."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from mailbox.models import SyncRun
from ops import tasks, totals
from tests.factories import make_account

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _run(account, *, ago: dt.timedelta, seconds: float | None = 2.0, error_class: str = "", fetched: int = 1):
    started = NOW - ago
    return SyncRun.objects.create(
        account=account,
        started_at=started,
        finished_at=None if seconds is None else started + dt.timedelta(seconds=seconds),
        error_class=error_class,
        fetched=fetched,
    )


@pytest.fixture
def account(alice):
    return make_account(alice)


def test_totals_are_the_same_before_and_after_folding_and_pruning(account):
    for days in (40, 35, 3):
        _run(account, ago=dt.timedelta(days=days), seconds=0.4)
        _run(account, ago=dt.timedelta(days=days), seconds=12, error_class="auth", fetched=0)
        _run(account, ago=dt.timedelta(days=days), seconds=1, error_class="busy", fetched=0)
    before = totals.current()
    assert before["syncs:ok"] == 3 and before["syncs:error"] == 3 and before["syncs:busy"] == 3
    assert before["errors:auth"] == 3 and before["fetched"] == 3
    assert before["duration_le:0.5"] == 3 and before["duration_le:10"] == 6 and before["duration_count"] == 9
    assert before["duration_sum"] == pytest.approx(3 * (0.4 + 12 + 1))

    assert totals.fold(now=NOW) == 9
    assert totals.current() == pytest.approx(before)
    assert totals.prune(30, now=NOW) == 6  # the runs of 40 and 35 days ago
    assert SyncRun.objects.count() == 3
    assert totals.current() == pytest.approx(before)

    _run(account, ago=dt.timedelta(minutes=5))  # new activity keeps adding up
    assert totals.current()["syncs:ok"] == 4
    assert totals.fold(now=NOW) == 1
    assert totals.fold(now=NOW) == 0  # nothing twice
    assert totals.current()["syncs:ok"] == 4


def test_folding_waits_for_a_running_sync_but_not_for_an_abandoned_one(account, settings):
    settings.WEBPOP_SYNC_LEASE_SECONDS = 600
    done = _run(account, ago=dt.timedelta(minutes=10))
    running = _run(account, ago=dt.timedelta(minutes=9), seconds=None)
    later = _run(account, ago=dt.timedelta(minutes=8))
    assert totals.fold(now=NOW) == 1
    assert totals.watermark() == done.id
    assert totals.running(now=NOW) == 1
    # The running sync finishes: it and the one after it are folded.
    SyncRun.objects.filter(id=running.id).update(finished_at=NOW - dt.timedelta(minutes=2))
    assert totals.fold(now=NOW) == 2 and totals.watermark() == later.id
    # A sync whose worker was killed never finishes: after twice the lease it no longer holds the fold back.
    dead = _run(account, ago=dt.timedelta(minutes=19), seconds=None)
    SyncRun.objects.filter(id=dead.id).update(started_at=NOW - dt.timedelta(minutes=21))
    after = _run(account, ago=dt.timedelta(minutes=3))
    assert totals.running(now=NOW) == 0
    assert totals.fold(now=NOW) == 2 and totals.watermark() == after.id
    assert totals.current()["syncs:ok"] == 4  # the abandoned run counts nowhere


def test_folding_stays_a_minute_behind_so_no_run_is_skipped(account):
    old = _run(account, ago=dt.timedelta(minutes=5))
    _run(account, ago=dt.timedelta(seconds=10))
    assert totals.fold(now=NOW) == 1 and totals.watermark() == old.id
    assert totals.current()["syncs:ok"] == 2


def test_prune_keeps_history_that_is_not_folded_yet(account):
    _run(account, ago=dt.timedelta(days=60))
    assert totals.prune(30, now=NOW) == 0
    assert SyncRun.objects.count() == 1


def test_the_hourly_task_folds_then_prunes(account, settings):
    settings.WEBPOP_SYNC_HISTORY_DAYS = 30
    SyncRun.objects.create(
        account=account, started_at=timezone.now() - dt.timedelta(days=31), finished_at=timezone.now(), fetched=5
    )
    assert tasks.prune_sync_history() == 1
    assert totals.current()["fetched"] == 5
