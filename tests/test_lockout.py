"""Brute-force protection on the real login form: lockout per user name and address, admin unlock."""

from __future__ import annotations

import json

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from users.models import AuditEvent

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.7"
PASSWORD = "alice-Password-1"


def _login(client: Client, password: str):
    return client.post(reverse("login"), {"username": "alice", "password": password})


def test_too_many_wrong_passwords_lock_out_even_the_right_one(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(2):
        assert _login(attacker, "guess").status_code == 200  # the form again, with its error
    locked = _login(attacker, "guess")
    assert locked.status_code == 429
    assert "Too many attempts" in locked.content.decode()
    right = _login(attacker, PASSWORD)
    assert right.status_code == 429
    assert attacker.get(reverse("mailbox:inbox")).status_code == 302  # not signed in

    # Alice, elsewhere, still signs in: the lock is on this name from that address.
    elsewhere = Client(REMOTE_ADDR="198.51.100.20")
    assert _login(elsewhere, PASSWORD).status_code == 302


def test_failed_logins_are_audited_without_the_password(alice, settings):
    _login(Client(REMOTE_ADDR=ATTACKER), "hunter2-secret")
    event = AuditEvent.objects.get(action="login.failed")
    assert event.target == "user:alice" and event.ip == ATTACKER and event.actor is None
    assert "hunter2-secret" not in json.dumps(event.details)


def test_an_administrator_unlocks_from_the_admin(alice, settings, django_user_model):
    settings.AXES_FAILURE_LIMIT = 2
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(2):
        _login(attacker, "guess")
    assert _login(attacker, PASSWORD).status_code == 429
    attempt = AccessAttempt.objects.get(username="alice", ip_address=ATTACKER)

    admin = django_user_model.objects.create_superuser("root", "root@example.org", "root-Password-1")
    admin_client = Client()
    admin_client.force_login(admin)
    response = admin_client.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="admin.delete", actor=admin, target__startswith="accessattempt:").exists()

    assert _login(attacker, PASSWORD).status_code == 302


def test_behind_a_proxy_the_lock_is_on_the_forwarded_address(alice, settings):
    settings.WEBPOP_PROXY_HOPS = 1
    settings.AXES_FAILURE_LIMIT = 2
    attacker = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=ATTACKER)
    for _ in range(2):
        _login(attacker, "guess")
    assert _login(attacker, PASSWORD).status_code == 429
    assert AccessAttempt.objects.get().ip_address == ATTACKER
    # Alice comes through the same proxy from her own address: not locked out.
    alice_browser = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert _login(alice_browser, PASSWORD).status_code == 302
