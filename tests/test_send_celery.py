"""End to end: the web's Send on Redis, a real Celery worker and beat, a greylisting SMTP server, the retry, Sent."""

from __future__ import annotations

import datetime as dt
import sys

import pytest
from celery.signals import before_task_publish
from django.urls import reverse
from django.utils import timezone

from accounts.models import MailAccount, Profile
from mailbox.models import Folder, Message
from outgoing import send
from outgoing.models import OutgoingMessage, OutgoingState
from tests.processes import REPO, running, wait_until, webpop_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]


@pytest.fixture
def published():
    """(task name, eta) of every task this process publishes: the web's, and the in-process worker's."""
    seen: list[tuple[str, str | None]] = []

    def record(sender=None, headers=None, **_kwargs):
        seen.append((sender, (headers or {}).get("eta")))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


def test_a_greylisted_send_is_retried_from_its_row_by_beat_and_the_worker(
    alice, alice_client, smtp_account, smtp_server, celery_worker, published, monkeypatch, tmp_path
):
    monkeypatch.setattr(send, "backoff", lambda retries: 1)  # the worker runs in this process
    account = smtp_account()
    Profile.objects.update_or_create(
        user=alice, defaults={"undo_send_seconds": 0}
    )  # the retry's wait is the subject here, not Undo's
    MailAccount.objects.update(next_poll_at=timezone.now() + dt.timedelta(days=1))  # no polls in the way
    smtp_server.fail("rcpt", 450, "4.2.0 Greylisted, please try again", times=1)

    env = webpop_env(tmp_path / "data", WEBPOP_POLL_TICK_SECONDS="1")
    beat = [sys.executable, "-m", "celery", "-A", "webpop", "beat", "--schedule", str(tmp_path / "schedule")]
    with running({"beat": beat}, env=env, cwd=REPO, logs=tmp_path / "logs") as procs:
        response = alice_client.post(
            reverse("outgoing:compose"),
            {"account": account.id, "to": "bob@example.net", "subject": "Through Celery", "body": "Hi.",
             "action": "send"},
        )  # fmt: skip
        assert response.status_code == 302
        outgoing = OutgoingMessage.objects.get(owner=alice)
        wait_until(
            lambda: OutgoingMessage.objects.get(id=outgoing.id).state == OutgoingState.SENT,
            "the retry",
            procs=procs,
            logs=tmp_path / "logs",
        )
    outgoing.refresh_from_db()
    assert outgoing.attempts == 2
    assert len(smtp_server.received) == 1
    assert Message.objects.get(folder=Folder.SENT).subject == "Through Celery"
    sends = [eta for name, eta in published if name == "outgoing.tasks.send_outgoing"]
    assert sends == [None, None]  # the web's try, then beat's sweep's: the wait was on the row, not in the broker
    assert [name for name, eta in published if eta is not None] == []
