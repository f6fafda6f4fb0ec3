"""Accessibility of the operators' pages: axe-core in real Chromium, light and dark (as tests/test_accessibility.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import MailAccount
from mailbox.models import FetchFailure, SyncRun
from ops.models import WorkerHeartbeat
from tests.factories import make_account
from tests.test_accessibility import _check

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def busy_site(alice, bob):
    now = timezone.now()
    good = make_account(alice, host="good.example.net")
    bad = make_account(bob, host="bad.example.net")
    MailAccount.objects.filter(id=good.id).update(last_success_at=now)
    MailAccount.objects.filter(id=bad.id).update(last_error_class="auth", last_error="Login failed.")
    for hours_ago in range(0, 150, 7):
        started = now - dt.timedelta(hours=hours_ago)
        SyncRun.objects.create(
            account=good, started_at=started, finished_at=started + dt.timedelta(seconds=2), fetched=3
        )
        SyncRun.objects.create(account=bad, started_at=started, finished_at=started, error_class="auth")
    FetchFailure.objects.create(account=good, uidl="u1", attempts=3, error="boom", quarantined_at=now)
    WorkerHeartbeat.objects.create(hostname="worker1@mx1", pid=1, concurrency=4)
    WorkerHeartbeat.objects.create(hostname="worker2@mx2", pid=2, stopped_at=now)


def test_operator_pages_have_no_serious_or_critical_violations(browser, axe, live_server, staff, busy_site):
    client = Client()
    client.force_login(staff)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    problems = []
    for name, path in (("ops-dashboard", "/ops/"), ("ops-accounts", "/ops/accounts/"), ("ops-users", "/ops/users/")):
        problems += _check(browser, axe, live_server.url + path, name, cookie)
    assert problems == [], "axe-core found serious/critical violations:\n" + "\n".join(problems)
