"""Exactly one Celery beat enqueues: a second beat (by mistake or for failover) waits on standby."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from ops import beatlock
from ops.beat import GuardedScheduler
from ops.models import SchedulerLease
from tests.conftest import require_postgresql
from tests.processes import REPO, webpop_env
from webpop.celery import app as celery_app

# --- The lease ------------------------------------------------------------------------


@pytest.mark.django_db
def test_one_holder_at_a_time_until_it_releases_or_lapses():
    now = timezone.now()
    assert beatlock.hold("a", 60, now=now)
    assert not beatlock.hold("b", 60, now=now)
    assert beatlock.hold("a", 60, now=now + dt.timedelta(seconds=30))  # renewal
    assert not beatlock.hold("b", 60, now=now + dt.timedelta(seconds=80))  # renewed until 90 s
    assert beatlock.current_holder(now=now) == "a"
    beatlock.release("b")  # not the holder: nothing happens
    assert beatlock.current_holder(now=now) == "a"
    assert beatlock.hold("b", 60, now=now + dt.timedelta(seconds=91))  # a stopped renewing: lapsed
    assert not beatlock.hold("a", 60, now=now + dt.timedelta(seconds=92))
    beatlock.release("b")
    assert beatlock.current_holder() is None
    assert beatlock.hold("a", 60)
    assert SchedulerLease.objects.count() == 1


# --- Two schedulers in one process -----------------------------------------------------


class RecordingScheduler(GuardedScheduler):
    """Records what it would send instead of publishing (the process test below publishes for real)."""

    def __init__(self, *args, **kwargs):
        self.sent: list[str] = []
        super().__init__(*args, **kwargs)

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        self.sent.append(entry.name)
        return None


def _scheduler(tmp_path, name: str, holder: str) -> RecordingScheduler:
    scheduler = RecordingScheduler(app=celery_app, schedule_filename=str(tmp_path / f"{name}-schedule"))
    scheduler.holder = holder
    for entry in scheduler.schedule.values():
        entry.last_run_at = timezone.now() - dt.timedelta(days=1)  # every entry is due now
    scheduler._heap = None
    return scheduler


def _tick_all(scheduler: RecordingScheduler) -> None:
    for _ in range(len(scheduler.schedule) + 1):
        scheduler.tick()


# transaction=True: the scheduler closes stale connections between ticks, as in a real beat.
@pytest.mark.django_db(transaction=True)
def test_the_second_scheduler_sends_nothing_until_the_first_closes(tmp_path):
    first = _scheduler(tmp_path, "first", "host-a:1")
    second = _scheduler(tmp_path, "second", "host-b:2")
    _tick_all(first)
    assert "poll-due-accounts" in first.sent
    _tick_all(second)
    assert second.sent == []
    # Standby ticks come back often enough to take over within a third of the lease.
    assert second.tick() == pytest.approx(settings.WEBPOP_BEAT_LEASE_SECONDS / 3)
    first.close()
    _tick_all(second)
    assert "poll-due-accounts" in second.sent
    second.close()


@pytest.mark.django_db(transaction=True)
def test_the_leader_renews_well_before_the_lease_lapses(tmp_path):
    scheduler = _scheduler(tmp_path, "only", "host-a:1")
    _tick_all(scheduler)
    assert scheduler.tick() <= settings.WEBPOP_BEAT_LEASE_SECONDS / 3  # even with nothing due for an hour
    scheduler.close()


# --- Two real beat processes -------------------------------------------------------------


def _origins(queue_dir: Path) -> list[str]:
    """Which process published each waiting task, oldest first (Celery's 'origin' header: gen<pid>@host)."""
    origins = []
    for path in sorted(queue_dir.glob("*.celery.msg"), key=lambda p: int(p.name.split("_", 1)[0])):
        try:
            origins.append(json.loads(path.read_text())["headers"]["origin"])
        except (ValueError, OSError):
            continue  # still being written
    return origins


def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_two_beat_processes_never_both_enqueue_and_the_standby_takes_over(tmp_path):
    require_postgresql()
    data_dir = tmp_path / "data"
    # The folder queue: every published task is a file we can read.
    env = webpop_env(data_dir, redis=False, WEBPOP_POLL_TICK_SECONDS="1", WEBPOP_BEAT_LEASE_SECONDS="3")
    queue_dir = data_dir / "broker" / "queue"
    procs, logs = {}, {}

    def start(name: str) -> subprocess.Popen:
        logs[name] = tmp_path / f"{name}.log"
        with open(logs[name], "w") as log:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "webpop", "beat", "--loglevel", "INFO",
                 "--schedule", str(tmp_path / f"{name}-schedule"), "--pidfile", str(tmp_path / f"{name}.pid")],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return procs[name]

    try:
        first = start("first")
        _wait_for(lambda: len(_origins(queue_dir)) >= 2, "the first beat to enqueue")
        first_origin = f"gen{first.pid}@"
        second = start("second")
        _wait_for(lambda: "is on standby" in logs["second"].read_text(), "the second beat to start")
        sent_before = len(_origins(queue_dir))
        _wait_for(lambda: len(_origins(queue_dir)) >= sent_before + 3, "more ticks with both beats running")
        assert all(origin.startswith(first_origin) for origin in _origins(queue_dir)), "both beats enqueued"

        first.send_signal(signal.SIGTERM)  # a clean stop releases the lease
        first.wait(timeout=30)
        second_origin = f"gen{second.pid}@"
        _wait_for(lambda: any(o.startswith(second_origin) for o in _origins(queue_dir)), "the standby to take over")
        origins = _origins(queue_dir)
        switch = next(i for i, o in enumerate(origins) if o.startswith(second_origin))
        assert all(o.startswith(first_origin) for o in origins[:switch])
        assert all(o.startswith(second_origin) for o in origins[switch:])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# --- Stopping in the middle of a query ------------------------------------------------------

# Beat closes its scheduler from its SIGTERM handler, which may run while a tick's query is waiting
# for the database: here a SIGALRM handler closes the scheduler during a slow query of the main thread.
_STOP_DURING_A_QUERY = """
import signal, sys, time
import django
django.setup()
from django.db import connection
from ops import beatlock
from ops.beat import GuardedScheduler
from webpop.celery import app

scheduler = GuardedScheduler(app=app, schedule_filename=sys.argv[1])
scheduler.holder = "stopping:1"
scheduler.tick()
assert beatlock.current_holder() == "stopping:1"
closed = []
signal.signal(signal.SIGALRM, lambda *_: (scheduler.close(), closed.append(time.monotonic())))
signal.setitimer(signal.ITIMER_REAL, 0.3)
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_sleep(1.5)")
ended = time.monotonic()
print("closed-during-the-query", bool(closed) and closed[0] < ended, "holder", beatlock.current_holder())
"""


@pytest.mark.django_db(transaction=True)
def test_beat_stopped_during_a_query_gives_its_lease_up_and_does_not_hang(tmp_path):
    require_postgresql()
    env = webpop_env(tmp_path / "data", redis=False, DJANGO_SETTINGS_MODULE="webpop.settings")
    done = subprocess.run(
        [sys.executable, "-c", _STOP_DURING_A_QUERY, str(tmp_path / "schedule")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # The handler returned while the query still ran, and the lease was free after.
    assert done.stdout.split() == ["closed-during-the-query", "True", "holder", "None"], (
        done.stdout + done.stderr[-2000:]
    )
