"""End to end: the web's Send on Redis, a real Celery worker, a greylisting SMTP server, the retry, Sent."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.urls import reverse

from mailbox.models import Folder, Message
from outgoing import tasks
from outgoing.models import OutgoingMessage, OutgoingState
from tests.conftest import require
from webpop.celery import app as celery_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]


@pytest.fixture
def celery_worker():
    require(bool(settings.REDIS_URL), "Redis (set REDIS_URL)")
    celery_app.control.purge()  # leftovers from an earlier run must not run here
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the worker")


def test_send_from_the_web_is_retried_by_the_worker_after_greylisting(
    alice, alice_client, smtp_account, smtp_server, celery_worker, monkeypatch
):
    monkeypatch.setattr(tasks, "backoff", lambda retries: 1)  # the worker runs in this process
    account = smtp_account()
    smtp_server.fail("rcpt", 450, "4.2.0 Greylisted, please try again", times=1)

    response = alice_client.post(
        reverse("outgoing:compose"),
        {"account": account.id, "to": "bob@example.net", "subject": "Through Celery", "body": "Hi.", "action": "send"},
    )
    assert response.status_code == 302

    outgoing = OutgoingMessage.objects.get(owner=alice)
    wait_for(lambda: OutgoingMessage.objects.get(id=outgoing.id).state == OutgoingState.SENT)
    outgoing.refresh_from_db()
    assert outgoing.attempts == 2
    assert len(smtp_server.received) == 1
    assert Message.objects.get(folder=Folder.SENT).subject == "Through Celery"
