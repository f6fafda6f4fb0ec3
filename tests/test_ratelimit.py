"""webpop/lib/ratelimit.py: fixed windows counted in the database, per client, user and target; every limit."""

from __future__ import annotations

import datetime as dt
import functools
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from django.db import connections
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.models import MailAccount
from tests.conftest import FakeClock, require_postgresql, require_redis
from tests.factories import make_account
from webpop.lib import ratelimit
from webpop.models import RateCounter

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_a_key_allows_its_limit_per_window_then_refuses(monkeypatch):
    clock = FakeClock(1_000_020.0)
    monkeypatch.setattr(ratelimit, "time", clock)
    assert [ratelimit.hit("k", 3, 60) for _ in range(5)] == [True, True, True, False, False]
    assert ratelimit.hit("other", 3, 60) is True  # keys are counted apart
    clock.now += 59  # still the same window
    assert ratelimit.hit("k", 3, 60) is False
    clock.now += 1  # the next window
    assert ratelimit.hit("k", 3, 60) is True


def test_retry_after_counts_to_the_end_of_the_window(monkeypatch):
    monkeypatch.setattr(ratelimit, "time", FakeClock(1_000_045.5))  # 25.5 s into a 60 s window
    assert ratelimit.retry_after(60) == 35


@pytest.mark.django_db
def test_counters_hold_no_address_in_clear_and_are_pruned_when_their_window_ended(steady_clock):
    ratelimit.hit("email:target:alice@example.org", 5, 3600)
    [counter] = RateCounter.objects.all()
    assert "alice" not in counter.key and counter.count == 1
    assert ratelimit.prune(now=counter.expires_at) == 0  # the window is still running
    assert ratelimit.prune(now=counter.expires_at + dt.timedelta(seconds=1)) == 1


CACHES = {
    "file": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache"},
    "redis": {"BACKEND": "django.core.cache.backends.redis.RedisCache"},
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("cache", ["file", "redis"])
def test_concurrent_hits_are_all_counted_and_exactly_the_limit_passes(settings, tmp_path, cache):
    """Many threads (each its own database connection) at once: no count is lost, none passes twice."""
    # SQLite's in-memory test database cannot be shared by threads with real locking.
    require_postgresql()
    location = str(tmp_path) if cache == "file" else os.environ.get("REDIS_URL", "")
    if cache == "redis":
        require_redis()
    # The counters do not live in the cache, so which one is configured makes no difference.
    settings.CACHES = {"default": {**CACHES[cache], "LOCATION": location, "KEY_PREFIX": uuid.uuid4().hex}}
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker():
        try:
            start.wait()
            for _ in range(5):
                allowed = ratelimit.hit("burst", 17, 3600)
                with lock:
                    results.append(allowed)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 40
    assert results.count(True) == 17
    assert RateCounter.objects.get().count == 40


COUNT_IN_PROCESSES = """
import multiprocessing, sys

def work(barrier, results):
    import django

    django.setup()
    from webpop.lib import ratelimit

    barrier.wait()
    results.put([ratelimit.hit("burst", 17, 10**9) for _ in range(5)])  # a window no test run straddles

if __name__ == "__main__":
    context = multiprocessing.get_context("fork")  # before any database connection: each child opens its own
    barrier, results = context.Barrier(8), context.Queue()
    children = [context.Process(target=work, args=(barrier, results)) for _ in range(8)]
    for child in children:
        child.start()
    allowed = [hit for _ in children for hit in results.get(timeout=60)]
    for child in children:
        child.join()
    print(allowed.count(True), len(allowed))
"""


def test_web_processes_on_the_embedded_sqlite_database_count_atomically(tmp_path):
    """The default single machine (SQLite, the file cache, several web processes): exactly the limit passes."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="webpop.settings",
        PYTHONPATH=str(REPO),
        WEBPOP_DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'webpop.sqlite3'}",
    )
    run = functools.partial(subprocess.run, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run([sys.executable, "manage.py", "initdata"]).returncode == 0  # the data folder and its keys
    migrated = run([sys.executable, "manage.py", "migrate", "webpop", "-v0"])
    assert migrated.returncode == 0, migrated.stderr
    script = tmp_path / "count.py"
    script.write_text(COUNT_IN_PROCESSES)
    counted = run([sys.executable, str(script)])
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.split() == ["17", "40"]


def test_the_client_address_ignores_forwarded_headers_unless_proxies_are_configured(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    settings.WEBPOP_PROXY_HOPS = 0
    assert ratelimit.client_key(request) == "10.0.0.2"
    settings.WEBPOP_PROXY_HOPS = 1  # one proxy: it appended the address it saw; the rest is the client's say
    assert ratelimit.client_key(request) == "203.0.113.9"
    settings.WEBPOP_PROXY_HOPS = 3  # fewer entries than proxies: misconfigured, use the peer
    assert ratelimit.client_key(request) == "10.0.0.2"


def test_ipv6_clients_are_counted_by_their_slash_64():
    one = RequestFactory().get("/", REMOTE_ADDR="2001:db8:1:2::a")
    same_subscriber = RequestFactory().get("/", REMOTE_ADDR="2001:db8:1:2:ffff::1")
    other = RequestFactory().get("/", REMOTE_ADDR="2001:db8:1:3::a")
    assert ratelimit.client_key(one) == ratelimit.client_key(same_subscriber) == "2001:db8:1:2::/64"
    assert ratelimit.client_key(other) != ratelimit.client_key(one)
    assert ratelimit.client_key(RequestFactory().get("/", REMOTE_ADDR="::ffff:192.0.2.7")) == "192.0.2.7"
    assert ratelimit.client_key(RequestFactory().get("/", REMOTE_ADDR="fe80::1%eth0")) == "fe80::/64"
    assert ratelimit.client_key(RequestFactory().get("/", REMOTE_ADDR="")) == "unknown"


# --- The account form's connection test ---------------------------------------------------------


def form_data(server, **overrides) -> dict:
    data = {
        "label": "Home",
        "host": server.host,
        "security": "none",
        "port": server.port,
        "username": "alice",
        "password": server.users["alice"],
        "policy": "keep",
        "days": "",
        "poll_interval": "300",
        "action": "test",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_connection_tests_are_limited_per_user_and_nothing_is_lost(alice_client, fault_server, settings, steady_clock):
    settings.WEBPOP_RATELIMIT_TEST_CONNECTION = 2
    server = fault_server()
    url = reverse("accounts:add")
    assert [alice_client.post(url, form_data(server)).status_code for _ in range(2)] == [200, 200]
    limited = alice_client.post(url, form_data(server, label="Work account", action="save", save_anyway="on"))
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    html = limited.content.decode()
    assert 'data-error-class="rate_limited"' in html
    assert "Too many connection tests" in html
    assert 'value="Work account"' in html  # the form comes back filled in
    assert server.sessions == 2  # the third test never connected
    assert MailAccount.objects.count() == 0  # and "save anyway" did not slip past the limit


@pytest.mark.django_db
def test_editing_an_account_shares_the_connection_test_limit(alice, alice_client, fault_server, settings, steady_clock):
    settings.WEBPOP_RATELIMIT_TEST_CONNECTION = 1
    server = fault_server()
    account = make_account(alice, host=server.host, port=server.port, security="none", username="alice")
    assert alice_client.post(reverse("accounts:add"), form_data(server)).status_code == 200
    edit = alice_client.post(reverse("accounts:edit", args=[account.id]), form_data(server, label="Renamed"))
    assert edit.status_code == 429
    account.refresh_from_db()
    assert account.label != "Renamed"
    assert server.sessions == 1


@pytest.mark.django_db
def test_one_address_is_limited_across_users(django_user_model, fault_server, settings, steady_clock):
    settings.WEBPOP_RATELIMIT_TEST_CONNECTION = 1  # three per address
    server = fault_server()
    statuses = []
    for number in range(4):
        user = django_user_model.objects.create(username=f"user{number}")
        client = Client(REMOTE_ADDR="198.51.100.7")
        client.force_login(user)
        statuses.append(client.post(reverse("accounts:add"), form_data(server)).status_code)
    assert statuses == [200, 200, 200, 429]
    elsewhere = django_user_model.objects.create(username="elsewhere")
    client = Client(REMOTE_ADDR="198.51.100.8")
    client.force_login(elsewhere)
    assert client.post(reverse("accounts:add"), form_data(server)).status_code == 200


@pytest.mark.django_db
def test_invalid_forms_do_not_use_up_the_limit(alice_client, fault_server, settings, steady_clock):
    settings.WEBPOP_RATELIMIT_TEST_CONNECTION = 1
    server = fault_server()
    for _ in range(3):
        assert alice_client.post(reverse("accounts:add"), form_data(server, host="")).status_code == 200
    assert alice_client.post(reverse("accounts:add"), form_data(server)).status_code == 200


# --- Autoconfig suggestions ------------------------------------------------------------------------


@pytest.mark.django_db
def test_suggest_is_limited_with_a_json_answer(alice_client, bob_client, settings, steady_clock):
    settings.WEBPOP_RATELIMIT_SUGGEST = 2
    settings.WEBPOP_DNS_NAMESERVERS = ["127.0.0.1:9"]  # presets only: no lookups
    url = reverse("accounts:suggest") + "?address=me@fastmail.com"
    assert [alice_client.get(url).status_code for _ in range(2)] == [200, 200]
    limited = alice_client.get(url)
    assert limited.status_code == 429
    assert limited.json()["suggestions"] == []
    assert "Too many lookups" in limited.json()["error"]
    assert int(limited["Retry-After"]) >= 1
    assert bob_client.get(url).status_code == 200  # another user (same address, under its limit of 6)
