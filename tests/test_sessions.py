"""People see where they are signed in and can end other sessions."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ops import actions as ops_actions
from users import actions, backends, sessions
from users.models import Session

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

PASSWORD = "alice-Password-1"
PHONE = "Mozilla/5.0 (Linux; Android 14) Mobile Safari"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def _signed_in(user_agent: str, ip: str) -> Client:
    client = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    assert client.post(reverse("login"), {"username": "alice", "password": PASSWORD}).status_code == 302
    return client


def _ids(page: str) -> list[str]:
    return re.findall(r"/security/sessions/([0-9a-f]{64})/end/", page)


def test_sessions_page_lists_each_browser_with_its_address(alice):
    laptop = _signed_in(LAPTOP, "198.51.100.1")
    phone = _signed_in(PHONE, "203.0.113.9")
    page = laptop.get(reverse("users:security")).content.decode()
    assert "Firefox/140.0" in page and "198.51.100.1" in page
    assert "Android 14" in page and "203.0.113.9" in page
    assert "This session" in page
    assert _ids(page) == [actions.session_id(phone.session.session_key)]  # this one ends by signing out
    # The keys (the cookies' values) are neither in the page nor in the database.
    stored = set(Session.objects.values_list("session_key", flat=True))
    for client in (laptop, phone):
        key = client.cookies[django_settings.SESSION_COOKIE_NAME].value
        assert key not in page and key not in stored
        assert actions.session_id(key) in stored


def test_ending_one_session_signs_that_browser_out(alice):
    laptop = _signed_in(LAPTOP, "198.51.100.1")
    phone = _signed_in(PHONE, "203.0.113.9")
    (session_id,) = _ids(laptop.get(reverse("users:security")).content.decode())
    assert laptop.get(reverse("users:end_session", args=[session_id])).status_code == 405  # POST only
    assert laptop.post(reverse("users:end_session", args=[session_id])).status_code == 302
    assert phone.get(reverse("mailbox:inbox")).status_code == 302
    assert laptop.get(reverse("mailbox:inbox")).status_code == 200


def test_sign_out_everywhere_else(alice):
    laptop = _signed_in(LAPTOP, "198.51.100.1")
    others = [_signed_in(PHONE, "203.0.113.9"), _signed_in(PHONE, "203.0.113.10")]
    assert laptop.post(reverse("users:end_other_sessions")).status_code == 302
    for other in others:
        assert other.get(reverse("mailbox:inbox")).status_code == 302
    assert laptop.get(reverse("mailbox:inbox")).status_code == 200
    assert Session.objects.filter(user=alice).count() == 1


def test_nobody_ends_another_users_session(alice, bob, bob_client):
    laptop = _signed_in(LAPTOP, "198.51.100.1")
    session_id = actions.session_id(laptop.session.session_key)
    assert bob_client.post(reverse("users:end_session", args=[session_id])).status_code == 404
    assert laptop.get(reverse("mailbox:inbox")).status_code == 200


def test_last_seen_is_written_only_every_few_minutes(alice):
    laptop = _signed_in(LAPTOP, "198.51.100.1")
    laptop.get(reverse("accounts:list"))  # the first page stores the time zone in the session (a write)
    key = actions.session_id(laptop.session.session_key)
    recent = timezone.now() - dt.timedelta(seconds=200)
    Session.objects.filter(session_key=key).update(last_seen=recent)
    sessions.forget([key])  # an update sends no signal: drop the cached data as a changed row would
    laptop.get(reverse("accounts:list"))
    assert Session.objects.get(session_key=key).last_seen == recent

    old = timezone.now() - dt.timedelta(minutes=6)
    Session.objects.filter(session_key=key).update(last_seen=old, ip="198.51.100.1")
    sessions.forget([key])
    moved = Client(HTTP_USER_AGENT=LAPTOP, REMOTE_ADDR="192.0.2.44")
    moved.cookies = laptop.cookies  # the same browser on another network
    moved.get(reverse("accounts:list"))
    row = Session.objects.get(session_key=key)
    assert row.last_seen > old and row.ip == "192.0.2.44"


def test_changing_the_password_ends_the_other_sessions(alice, mailoutbox):
    laptop = _signed_in(LAPTOP, "198.51.100.1")
    phone = _signed_in(PHONE, "203.0.113.9")
    new = "a-New-passw0rd-for-alice"
    response = laptop.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302 and response["Location"] == reverse("users:security")
    assert laptop.get(reverse("mailbox:inbox")).status_code == 200
    assert phone.get(reverse("mailbox:inbox")).status_code == 302
    assert Session.objects.filter(user=alice).count() == 1
    # And she is told, with the address it was done from.
    (notice,) = mailoutbox
    assert notice.to == ["alice@example.org"] and "password was changed" in notice.subject
    assert "198.51.100.1" in notice.body and new not in notice.body


def test_forwarded_address_is_trusted_only_behind_the_configured_proxies(alice, settings):
    settings.WEBPOP_PROXY_HOPS = 1
    client = Client(HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.50", REMOTE_ADDR="127.0.0.1")
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert Session.objects.get(user=alice).ip == "203.0.113.50"  # what our proxy saw, not what the client claims


def test_client_addresses_are_normalised_or_dropped(rf, settings):
    from webpop.lib.netaddr import client_ip

    settings.WEBPOP_PROXY_HOPS = 0
    assert client_ip(rf.get("/", REMOTE_ADDR="fe80::1%eth0")) == "fe80::1"
    assert client_ip(rf.get("/", REMOTE_ADDR="")) is None  # e.g. a Unix socket
    settings.WEBPOP_PROXY_HOPS = 2
    request = rf.get("/", HTTP_X_FORWARDED_FOR="203.0.113.1, 10.0.0.2", REMOTE_ADDR="127.0.0.1")
    assert client_ip(request) == "203.0.113.1"
    request = rf.get("/", HTTP_X_FORWARDED_FOR="not-an-address, 10.0.0.2", REMOTE_ADDR="127.0.0.1")
    assert client_ip(request) is None


# --- The session's data and the user come from the cache (users.sessions, users.backends) ---


def test_a_signed_in_page_reads_neither_session_nor_user_from_the_database(alice):
    laptop = _signed_in(LAPTOP, "198.51.100.1")
    laptop.get(reverse("accounts:list"))  # the first page stores the time zone in the session
    with CaptureQueriesContext(connection) as queries:
        assert laptop.get(reverse("accounts:preferences")).status_code == 200
    tables = " ".join(q["sql"] for q in queries.captured_queries)
    assert "users_session" not in tables and "auth_user" not in tables


def test_an_ended_session_is_signed_out_at_once_though_it_was_cached(alice):
    laptop = _signed_in(LAPTOP, "198.51.100.1")
    phone = _signed_in(PHONE, "203.0.113.9")
    assert phone.get(reverse("accounts:list")).status_code == 200  # cached now
    phone_id = actions.session_id(phone.session.session_key)
    assert laptop.post(reverse("users:end_session", args=[phone_id])).status_code == 302
    assert phone.get(reverse("accounts:list")).status_code == 302


def test_a_disabled_user_is_signed_out_at_once_though_they_were_cached(alice, alice_client, staff):
    assert alice_client.get(reverse("accounts:list")).status_code == 200
    ops_actions.set_user_active(staff, alice, False)  # a QuerySet.update: no signal
    assert alice_client.get(reverse("accounts:list")).status_code == 302


def test_a_password_changed_elsewhere_signs_out_cached_sessions(alice, alice_client):
    assert alice_client.get(reverse("accounts:list")).status_code == 200
    alice.set_password("another-Password-2")
    alice.save()
    assert alice_client.get(reverse("accounts:list")).status_code == 302


def test_sessions_signed_in_under_the_former_backend_name_stay_signed_in(alice):
    client = Client()
    client.force_login(alice, backend=backends.BACKEND)
    session = client.session
    session[BACKEND_SESSION_KEY] = backends.LEGACY_BACKEND
    session.save()
    assert client.get(reverse("accounts:list")).status_code == 200
    assert client.session[BACKEND_SESSION_KEY] == backends.BACKEND


def test_pages_are_served_while_the_cache_is_down(alice, settings):
    laptop = _signed_in(LAPTOP, "198.51.100.1")
    settings.CACHES = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}  # refused
    }
    assert laptop.get(reverse("accounts:list")).status_code == 200
    assert laptop.get(reverse("mailbox:inbox")).status_code == 200


def test_the_cache_holds_the_sessions_data_under_its_hash_and_no_user(alice, alice_client):
    assert alice_client.get(reverse("accounts:list")).status_code == 200
    key = alice_client.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert cache.get(sessions.KEY_PREFIX + key) is None  # a copy of the cache holds no usable cookie
    data = cache.get(sessions.KEY_PREFIX + sessions.key_hash(key))
    assert data[SESSION_KEY] == str(alice.pk)
    assert all(isinstance(value, (str, int, float, bool, type(None))) for value in data.values())  # no user object


def test_a_changed_user_is_read_afresh_not_from_the_cache(alice, alice_client):
    assert alice_client.get(reverse("accounts:list")).status_code == 200  # alice is cached now
    alice.first_name = "Alicia"
    alice.save()
    assert backends.CachedModelBackend().get_user(alice.pk).first_name == "Alicia"
