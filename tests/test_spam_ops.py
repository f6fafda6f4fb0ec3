"""Spam filtering for operators: the dashboard's card and alert, /metrics; rspamd down is an alert, not lost mail."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from mailbox.models import Folder, Message
from spam import health, scanning
from spam.models import PendingScan
from tests.factories import build_message, make_account, store_message
from tests.rspamd import GTUBE

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def dashboard(client) -> str:
    response = client.get(reverse("ops:dashboard"))
    assert response.status_code == 200
    return response.content.decode()


def metrics(client) -> dict[str, float]:
    lines = client.get("/metrics").content.decode().splitlines()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line and line[0] != "#"}


def test_without_rspamd_the_card_says_what_judges_mail(staff_client, alice):
    account = make_account(alice)
    account.spam_trust_provider = True
    account.save()
    page = dashboard(staff_client)
    assert "No rspamd is set up (WEBPOP_RSPAMD_URL)" in page
    assert "(1 account does)" in page
    assert 'id="spam-alert"' not in page
    assert "webpop_rspamd_up" not in metrics(staff_client)


def test_rspamd_down_is_an_alert_and_the_mail_waits_in_the_inbox(staff_client, alice, rspamd):
    account = make_account(alice)
    rspamd.stop()
    for n in range(3):
        store_message(account, build_message(f"Message {n}", GTUBE if n == 0 else "Hello."), f"m{n}")
    report = scanning.scan_due()
    assert report.postponed == 3
    assert set(Message.objects.values_list("folder", flat=True)) == {Folder.INBOX}

    page = dashboard(staff_client)
    assert 'id="spam-alert"' in page
    assert "rspamd has not answered for" in page
    assert "3 messages wait to be scanned; meanwhile they are in the Inbox" in page
    assert "not answering" in page
    numbers = metrics(staff_client)
    assert numbers["webpop_rspamd_up"] == 0
    assert numbers['webpop_spam_pending{work="scan"}'] == 3

    rspamd.start()
    assert scanning.scan_due(now=timezone.now() + dt.timedelta(minutes=5)).judged == 3
    page = dashboard(staff_client)
    assert 'id="spam-alert"' not in page
    assert "answering" in page and "3 this hour, 3 in 24 hours" in page
    assert "33.3 % in 24 hours (1 to Spam, 0 marked probably spam)" in page
    numbers = metrics(staff_client)
    assert numbers["webpop_rspamd_up"] == 1
    assert numbers["webpop_spam_scanned_total"] == 3
    assert numbers['webpop_spam_verdicts_total{verdict="spam"}'] == 1
    assert numbers["webpop_spam_rspamd_scans_total"] == 3
    assert numbers['webpop_spam_scan_seconds_total{side="request"}'] > 0
    assert numbers['webpop_spam_pending{work="scan"}'] == 0
    assert "webpop_spam_oldest_pending_scan_seconds" not in numbers


def test_mail_waiting_long_for_its_scan_is_an_alert_even_while_rspamd_answers(staff_client, alice, settings):
    settings.WEBPOP_RSPAMD_URL = "http://127.0.0.1:11333"
    message = store_message(make_account(alice), build_message("Hello"), "m1")
    health.answered(0.01)
    assert 'id="spam-alert"' not in dashboard(staff_client)
    PendingScan.objects.filter(message=message).update(created_at=timezone.now() - dt.timedelta(minutes=30))
    page = dashboard(staff_client)
    assert 'id="spam-alert"' in page
    assert "New mail has waited 30" in page


def test_the_health_check_asks_rspamd_when_there_is_nothing_to_scan(rspamd):
    scanning.check_health()
    state = health.rspamd_health()
    assert state.failing_since is None and state.latency_seconds > 0
    rspamd.stop()
    scanning.check_health()
    assert health.rspamd_health().failing_since is not None


def test_a_wrong_controller_password_holds_training_back_and_shows(staff_client, alice, rspamd, settings):
    from mailbox import actions
    from spam import learning
    from spam.models import PendingLearn

    text = "Cheap replica watches, limited offer, free shipping on every order placed before the end of the month."
    message = store_message(make_account(alice), build_message("Offer", text), "m1")
    actions.move(alice.id, [message.id], Folder.SPAM)
    settings.WEBPOP_RSPAMD_PASSWORD = "not-the-password"
    report = learning.learn_due()
    assert (report.learned, report.postponed) == (0, 1)
    assert PendingLearn.objects.get().attempts == 0  # the site's setting, not the message's fault
    page = dashboard(staff_client)
    assert "Training" in page and "refused the password (WEBPOP_RSPAMD_PASSWORD)" in page

    settings.WEBPOP_RSPAMD_PASSWORD = rspamd.password
    assert learning.learn_due(now=timezone.now() + dt.timedelta(minutes=5)).learned == 1
    assert "refused the password" not in dashboard(staff_client)
