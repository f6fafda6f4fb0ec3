"""Worker heartbeats: each worker records its node name and last sign of life in the shared database."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection
from django.utils import timezone

from ops import heartbeats
from ops.models import WorkerHeartbeat
from tests.conftest import require_postgresql, require_redis
from tests.processes import REPO, webpop_env
from webpop.celery import Heartbeat
from webpop.celery import app as celery_app


@pytest.mark.django_db
def test_a_heartbeat_updates_one_row_per_worker():
    start = timezone.now()
    heartbeats.record("w1@mx", pid=10, concurrency=4, starting=True, now=start)
    heartbeats.record("w1@mx", pid=10, now=start + dt.timedelta(seconds=30))
    heartbeats.record("w2@mx", pid=11, starting=True, now=start)
    rows = {row.hostname: row for row in WorkerHeartbeat.objects.all()}
    assert set(rows) == {"w1@mx", "w2@mx"}
    assert rows["w1@mx"].last_seen_at == start + dt.timedelta(seconds=30)
    assert rows["w1@mx"].started_at == start and rows["w1@mx"].concurrency == 4


@pytest.mark.django_db
def test_workers_are_alive_late_or_stopped(settings):
    settings.WEBPOP_HEARTBEAT_SECONDS = 10
    now = timezone.now()
    heartbeats.record("fresh@a", pid=1, starting=True, now=now - dt.timedelta(seconds=25))
    heartbeats.record("silent@b", pid=2, starting=True, now=now - dt.timedelta(seconds=31))
    heartbeats.record("gone@c", pid=3, starting=True, now=now - dt.timedelta(seconds=5))
    heartbeats.record_stopped("gone@c", pid=3, now=now)
    states = {w.hostname: (w.state, w.seconds_since) for w in heartbeats.workers(now)}
    assert states == {"fresh@a": ("alive", 25), "silent@b": ("late", 31), "gone@c": ("stopped", 0)}


@pytest.mark.django_db
def test_a_restarted_worker_is_alive_again_and_long_gone_names_are_forgotten():
    now = timezone.now()
    heartbeats.record("old@x", pid=1, starting=True, now=now - dt.timedelta(days=8))
    heartbeats.record("w@mx", pid=1, starting=True, now=now - dt.timedelta(minutes=5))
    heartbeats.record_stopped("w@mx", pid=1, now=now - dt.timedelta(minutes=4))
    heartbeats.record("w@mx", pid=2, starting=True, now=now)
    assert [(w.hostname, w.state, w.pid) for w in heartbeats.workers(now)] == [("w@mx", "alive", 2)]


@pytest.mark.django_db
def test_a_late_stop_of_an_old_process_does_not_mark_its_successor_stopped():
    heartbeats.record("w@mx", pid=2, starting=True)
    heartbeats.record_stopped("w@mx", pid=1)
    assert heartbeats.workers()[0].state == "alive"


def _in_thread(target, *args) -> threading.Thread:
    def run():
        try:
            target(*args)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_beat_under_way_when_the_worker_stops_does_not_undo_the_stop(monkeypatch):
    worker = SimpleNamespace(hostname="race@here", concurrency=1)
    step = Heartbeat(worker)
    heartbeats.record("race@here", pid=os.getpid(), starting=True)
    in_beat, release = threading.Event(), threading.Event()
    record = heartbeats.record

    def slow_record(*args, **kwargs):
        in_beat.set()
        release.wait(10)
        record(*args, **kwargs)

    monkeypatch.setattr(heartbeats, "record", slow_record)
    beat = _in_thread(step._beat, worker)  # on the timer's thread
    assert in_beat.wait(10)
    stop = _in_thread(step.stop, worker)  # on the worker's, while the beat is under way
    time.sleep(0.3)
    release.set()
    beat.join(10)
    stop.join(10)
    assert [w.state for w in heartbeats.workers()] == ["stopped"]
    _in_thread(step._beat, worker).join(10)  # a beat the timer still had due
    assert [w.state for w in heartbeats.workers()] == ["stopped"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery
def test_a_running_worker_reports_and_its_clean_stop_is_recorded(settings):
    require_redis()
    settings.WEBPOP_HEARTBEAT_SECONDS = 1
    with start_worker(celery_app, pool="solo", perform_ping_check=False, hostname="hb-test@here"):
        first = WorkerHeartbeat.objects.get(hostname="hb-test@here")
        assert first.stopped_at is None
        deadline = time.monotonic() + 30
        while WorkerHeartbeat.objects.get(hostname="hb-test@here").last_seen_at == first.last_seen_at:
            assert time.monotonic() < deadline, "no second heartbeat"
            time.sleep(0.2)
    stopped = WorkerHeartbeat.objects.get(hostname="hb-test@here")
    assert stopped.stopped_at is not None
    assert [w.state for w in heartbeats.workers()] == ["stopped"]


@pytest.mark.django_db(transaction=True)
def test_a_worker_on_the_folder_queue_reports_too(tmp_path, settings):
    """No Redis (the single-machine default): heartbeats go through the database all the same."""
    require_postgresql()
    env = webpop_env(tmp_path, redis=False, WEBPOP_HEARTBEAT_SECONDS="1", PYTHONPATH=str(REPO))
    with open(tmp_path / "worker.log", "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "webpop", "worker", "--pool", "solo", "--hostname", "folder@here"],
            cwd=Path(__file__).resolve().parent.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        seen = []
        while len(seen) < 2:  # started, then at least one periodic beat
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
            row = WorkerHeartbeat.objects.filter(hostname="folder@here").values_list("last_seen_at", flat=True).first()
            if row is not None and row not in seen:
                seen.append(row)
            time.sleep(0.2)
        assert "filesystem" in (tmp_path / "worker.log").read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert [w.state for w in heartbeats.workers() if w.hostname == "folder@here"] == ["stopped"]
