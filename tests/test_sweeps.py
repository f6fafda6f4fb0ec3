"""The broker only wakes workers up: work whose task was lost is found again from database rows by beat.

Each test publishes a task for real, drops it from Redis before any worker sees it (as a broker restart
or a worker killed holding it would), then starts a real worker and a real beat and waits for the work.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import MailAccount, Profile
from mailbox import actions as mailbox_actions
from mailbox import tasks as mailbox_tasks
from mailbox.models import Message
from outgoing import send
from outgoing import tasks as outgoing_tasks
from outgoing.models import OutgoingMessage, OutgoingState
from tests.conftest import require_postgresql, require_redis
from tests.factories import build_message, make_account, store_message
from tests.processes import REPO, running, wait_until, webpop_env
from webpop import broker
from webpop.celery import app as celery_app

# --- No countdown the broker cannot keep ---------------------------------------------------------


def test_the_countdown_limit_is_half_the_configured_visibility_timeout():
    assert broker.max_countdown({"visibility_timeout": 600}) == 300
    assert broker.max_countdown({}) == broker.DEFAULT_VISIBILITY_TIMEOUT // 2  # the folder queue: the same
    assert broker.max_countdown(celery_app.conf.broker_transport_options) == 1800


def test_publishing_a_task_to_wait_longer_than_the_broker_keeps_it_fails():
    limit = broker.max_countdown(celery_app.conf.broker_transport_options)
    with pytest.raises(broker.CountdownTooLong):
        mailbox_tasks.index_search.apply_async(countdown=limit + 1)
    with pytest.raises(broker.CountdownTooLong):
        mailbox_tasks.index_search.apply_async(eta=timezone.now() + dt.timedelta(seconds=limit + 60))
    # A retry publishes through a signature, the same way.
    with pytest.raises(broker.CountdownTooLong):
        outgoing_tasks.send_outgoing.si(1).set(countdown=limit + 1).apply_async()
    now = timezone.now()
    broker.check_delay({"countdown": limit}, celery_app.conf.broker_transport_options)
    broker.check_delay({"eta": (now + dt.timedelta(seconds=limit - 1)).isoformat()}, None, now=now)
    broker.check_delay({}, None)


# --- A real worker and beat, after the task was lost -----------------------------------------------


@pytest.fixture
def lost(settings):
    """lost(): drop what was published to Redis before any worker took it; says how many tasks that was."""
    require_redis()
    celery_app.control.purge()  # what earlier tests left

    def drop() -> int:
        return celery_app.control.purge()

    return drop


@pytest.fixture
def worker_and_beat(request, tmp_path, settings):
    """start(): the in-process worker (conftest's celery_worker) and a real beat process ticking every second."""
    require_redis()
    require_postgresql()
    logs = tmp_path / "logs"
    env = webpop_env(tmp_path / "data", WEBPOP_POLL_TICK_SECONDS="1")
    beat = [sys.executable, "-m", "celery", "-A", "webpop", "beat", "--schedule", str(tmp_path / "schedule")]
    with contextlib.ExitStack() as stack:

        def start():
            request.getfixturevalue("celery_worker")
            procs = stack.enter_context(running({"beat": beat}, env=env, cwd=REPO, logs=logs))
            return lambda predicate, what: wait_until(predicate, what, procs=procs, logs=logs)

        yield start


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_send_whose_task_was_lost_is_sent_from_its_row(
    alice, alice_client, smtp_account, smtp_server, worker_and_beat, lost, monkeypatch
):
    monkeypatch.setattr(send, "REDISPATCH_AFTER", dt.timedelta(seconds=2))  # the sweep runs in this process
    account = smtp_account()
    Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 0})  # published at once, then dropped
    MailAccount.objects.update(next_poll_at=timezone.now() + dt.timedelta(days=1))  # no polls in the way
    response = alice_client.post(
        reverse("outgoing:compose"),
        {"account": account.id, "to": "bob@example.net", "subject": "Lost and found", "body": "Hi.", "action": "send"},
    )
    assert response.status_code == 302
    assert lost() == 1

    wait_for = worker_and_beat()
    outgoing = OutgoingMessage.objects.get(owner=alice)
    wait_for(lambda: OutgoingMessage.objects.get(id=outgoing.id).state == OutgoingState.SENT, "the send")
    assert OutgoingMessage.objects.get(id=outgoing.id).attempts == 1
    assert [got.rcpt_tos for got in smtp_server.received] == [["bob@example.net"]]


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_search_documents_whose_task_was_lost_are_built_by_the_sweep(alice, worker_and_beat, lost):
    account = make_account(alice)
    MailAccount.objects.update(next_poll_at=timezone.now() + dt.timedelta(days=1))
    for i in range(3):
        store_message(account, build_message(f"Stored {i}", f"word{i}"), f"u{i}")
    mailbox_tasks.index_search.delay()  # what a sync publishes after storing mail
    assert lost() == 1
    assert Message.objects.filter(search_document__isnull=True).count() == 3

    wait_for = worker_and_beat()
    wait_for(lambda: not Message.objects.filter(search_document__isnull=True).exists(), "the search sweep")


@pytest.mark.celery
@pytest.mark.dovecot
@pytest.mark.django_db(transaction=True)
def test_check_now_whose_task_was_lost_still_syncs(
    pop_user, dovecot_account, alice_client, worker_and_beat, lost, monkeypatch
):
    monkeypatch.setattr(mailbox_actions, "SYNC_NOW_FALLBACK", dt.timedelta(seconds=2))
    account = dovecot_account()
    # Polled a moment ago: the next regular poll is an hour away.
    MailAccount.objects.filter(id=account.id).update(next_poll_at=timezone.now() + dt.timedelta(hours=1))
    pop_user.deliver(build_message("Checked by hand"))
    assert alice_client.post(reverse("accounts:check_now", args=[account.id])).status_code == 302
    assert lost() == 1

    wait_for = worker_and_beat()
    wait_for(lambda: Message.objects.filter(account=account, subject="Checked by hand").exists(), "the sync")


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_notification_whose_task_was_lost_is_pushed_from_the_rows(alice, settings, worker_and_beat, lost):
    from push import actions as push_actions
    from push import tasks as push_tasks
    from tests.push_service import PushService, turn_push_on
    from users.sessions import key_hash

    turn_push_on(settings)  # the worker runs in this process, with these settings
    service = PushService().start()
    try:
        client = Client()
        client.force_login(alice)
        session = key_hash(client.cookies[settings.SESSION_COOKIE_NAME].value)
        browser = push_actions.BrowserSubscription(
            service.endpoint(), service.p256dh, service.auth, settings.WEBPOP_VAPID_PUBLIC_KEY
        )
        push_actions.subscribe(alice, session, browser, language="en")
        account = make_account(alice)
        MailAccount.objects.update(next_poll_at=timezone.now() + dt.timedelta(days=1))
        store_message(account, build_message("Lost and pushed"), "u1")
        push_tasks.notify_new_mail.delay(alice.id)  # what the sync publishes after storing mail
        assert lost() == 1

        wait_for = worker_and_beat()
        wait_for(lambda: len(service.received) == 1, "the push")
        assert service.received[0].payload["body"] == "1 unread"
    finally:
        service.stop()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_whole_folder_action_whose_task_was_lost_is_run_from_its_row(
    alice, alice_client, worker_and_beat, lost, monkeypatch
):
    from mailbox import bulkjobs
    from mailbox.models import BulkJob

    monkeypatch.setattr(bulkjobs, "STALE_QUEUED", dt.timedelta(seconds=2))  # the sweep runs in this process
    account = make_account(alice)
    MailAccount.objects.update(next_poll_at=timezone.now() + dt.timedelta(days=1))
    for i in range(60):
        store_message(account, build_message(f"Stored {i}", "x"), f"u{i}")
    response = alice_client.post(
        reverse("mailbox:bulk"), {"action": "archive", "scope": "all", "criteria": "folder=inbox", "next": "/"}
    )
    assert response.status_code == 302
    assert lost() == 1
    job = BulkJob.objects.get(owner=alice)

    wait_for = worker_and_beat()
    wait_for(lambda: BulkJob.objects.get(id=job.id).state == "done", "the bulk job")
    assert Message.objects.filter(owner=alice, folder="archive").count() == 60


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_spam_scans_and_training_whose_tasks_were_lost_are_done_by_the_sweeps(alice, rspamd, worker_and_beat, lost):
    from mailbox import actions
    from mailbox.models import Folder
    from spam import tasks as spam_tasks
    from spam.models import PendingLearn, PendingScan
    from tests.rspamd import GTUBE

    account = make_account(alice)
    MailAccount.objects.update(next_poll_at=timezone.now() + dt.timedelta(days=1))
    gtube = store_message(account, build_message("GTUBE", GTUBE), "u1")
    letter = store_message(account, build_message("Letter", "Dear Alice."), "u2")
    spam_tasks.scan_pending.delay()  # what a sync publishes after storing mail
    actions.move(alice.id, [letter.id], Folder.SPAM)  # "Spam": publishes the training after commit
    assert lost() == 2
    assert PendingScan.objects.count() == 2 and PendingLearn.objects.count() == 1

    wait_for = worker_and_beat()
    wait_for(lambda: not PendingScan.objects.exists() and not PendingLearn.objects.exists(), "the spam sweeps")
    assert Message.objects.get(id=gtube.id).folder == Folder.SPAM
    assert Message.objects.get(id=letter.id).folder == Folder.SPAM
