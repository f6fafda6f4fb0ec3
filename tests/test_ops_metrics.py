"""/metrics: Prometheus text for scrapers with the bearer token, or sessions with the permission; nobody else."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import MailAccount
from mailbox.models import FetchFailure, SyncRun
from ops import storage
from ops.models import WorkerHeartbeat
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-scrape-token"
SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+)$")


def parse(text: str) -> dict[str, float]:
    """Every sample line as 'name{labels}' -> value; HELP/TYPE lines must precede each family."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        name = match.group(1)
        assert re.sub(r"_(bucket|sum|count)$", "", name) in typed or name in typed, f"{name} has no TYPE"
        samples[name + (match.group(2) or "")] = float(match.group(3))
    return samples


@pytest.mark.parametrize("is_staff", [False, True])
def test_unset_token_hides_metrics_from_everyone_but_operators(
    client, alice, alice_client, staff_client, settings, is_staff
):
    settings.WEBPOP_METRICS_TOKEN = None
    alice.is_staff = is_staff  # staff status alone grants nothing: the metrics permission does
    alice.save()
    assert alice_client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code in (302, 404)
    assert staff_client.get("/metrics").status_code == 200


def test_the_bearer_token_lets_a_scraper_in(client, staff, settings):
    settings.WEBPOP_METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "webpop_syncs_total" in response.content.decode()


@pytest.mark.parametrize("is_staff", [False, True])
def test_a_wrong_or_missing_token_is_401(client, alice, alice_client, staff, settings, is_staff):
    settings.WEBPOP_METRICS_TOKEN = TOKEN
    alice.is_staff = is_staff
    alice.save()
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer nope"}, {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"}):
        response = Client().get("/metrics", **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert alice_client.get("/metrics").status_code == 401  # a session without the permission counts for nothing


def _run(account, seconds: float, *, error_class: str = "", fetched: int = 0, finished: bool = True) -> None:
    started = timezone.now() - dt.timedelta(minutes=5)
    SyncRun.objects.create(
        account=account,
        started_at=started,
        finished_at=started + dt.timedelta(seconds=seconds) if finished else None,
        error_class=error_class,
        fetched=fetched,
        bytes=fetched * 1000,
    )


def test_counters_gauges_and_histogram_match_the_database(staff_client, alice, bob, settings, tmp_path):
    settings.REDIS_URL = None
    settings.CELERY_BROKER_DIR = tmp_path
    (tmp_path / "queue").mkdir()
    (tmp_path / "queue" / "1_x.celery.msg").write_text("{}")
    ok = make_account(alice)
    MailAccount.objects.filter(id=ok.id).update(last_success_at=timezone.now())
    bad = make_account(bob)
    MailAccount.objects.filter(id=bad.id).update(last_error_class="auth")
    paused = make_account(bob, host="paused.example.net")
    MailAccount.objects.filter(id=paused.id).update(enabled=False)
    FetchFailure.objects.create(account=ok, uidl="q", attempts=3, quarantined_at=timezone.now())
    _run(ok, 0.2, fetched=3)
    _run(ok, 3, fetched=2)
    _run(ok, 45)
    _run(bad, 1, error_class="auth")
    _run(bad, 1, error_class="auth")
    _run(bad, 20, error_class="timeout")
    _run(ok, 1, error_class="busy")
    _run(ok, 100, error_class="stopped")
    _run(ok, 0, finished=False)
    store_message(ok, build_message("stored"), "uid-1")
    storage.count(pause=0)  # the beat job counting stored mail
    WorkerHeartbeat.objects.create(hostname="w1@mx1", pid=1)
    bob.is_active = False
    bob.save()

    m = parse(staff_client.get("/metrics").content.decode())

    assert m['webpop_syncs_total{result="ok"}'] == 3
    assert m['webpop_syncs_total{result="error"}'] == 3
    assert m['webpop_syncs_total{result="busy"}'] == 1
    assert m['webpop_syncs_total{result="stopped"}'] == 1  # its worker stopped: no error of the account
    assert m["webpop_syncs_running"] == 1
    assert m['webpop_sync_errors_total{class="auth"}'] == 2
    assert m['webpop_sync_errors_total{class="timeout"}'] == 1
    assert m["webpop_messages_fetched_total"] == 5
    assert m["webpop_fetched_bytes_total"] == 5000
    assert m['webpop_sync_duration_seconds_bucket{le="0.5"}'] == 1
    assert m['webpop_sync_duration_seconds_bucket{le="1"}'] == 4
    assert m['webpop_sync_duration_seconds_bucket{le="5"}'] == 5
    assert m['webpop_sync_duration_seconds_bucket{le="30"}'] == 6
    assert m['webpop_sync_duration_seconds_bucket{le="60"}'] == 7
    assert m['webpop_sync_duration_seconds_bucket{le="120"}'] == 8
    assert m['webpop_sync_duration_seconds_bucket{le="+Inf"}'] == 8
    assert m["webpop_sync_duration_seconds_count"] == 8
    assert m["webpop_sync_duration_seconds_sum"] == pytest.approx(0.2 + 3 + 45 + 1 + 1 + 20 + 1 + 100)
    assert m['webpop_queue_depth{queue="celery"}'] == 1
    assert m['webpop_accounts{health="quarantine"}'] == 1
    assert m['webpop_accounts{health="auth"}'] == 1
    assert m['webpop_accounts{health="paused"}'] == 1
    assert m['webpop_accounts{health="ok"}'] == 0
    assert m["webpop_quarantined_messages"] == 1
    assert m['webpop_users{state="disabled"}'] == 1
    assert m["webpop_stored_messages"] == 1 and m["webpop_stored_bytes"] > 0
    assert m['webpop_worker_last_seen_timestamp_seconds{worker="w1@mx1"}'] > 0
    assert m["webpop_workers_alive"] == 1


def test_queue_depth_is_left_out_when_the_broker_is_down(staff_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    text = staff_client.get("/metrics").content.decode()
    assert "# TYPE webpop_queue_depth gauge" in text
    assert "webpop_queue_depth{" not in text


def test_label_values_are_escaped(staff_client):
    WorkerHeartbeat.objects.create(hostname='odd"name\\x', pid=1)
    text = staff_client.get("/metrics").content.decode()
    assert 'worker="odd\\"name\\\\x"' in text
