"""End to end: the web's Send on Redis, a real Celery worker, a greylisting SMTP server, the retry, Sent."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailbox.models import Folder, Message
from outgoing import tasks
from outgoing.models import OutgoingMessage, OutgoingState
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]


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
