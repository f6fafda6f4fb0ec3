"""End to end: beat's poll task on Redis, a real Celery worker, Dovecot, the inbox page."""

import hashlib

import pytest
from django.urls import reverse

from accounts.models import MailAccount
from mailbox import store, tasks
from mailbox.models import Message
from tests.conftest import wait_for
from tests.factories import build_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.celery]


def test_beat_poll_syncs_due_account_and_inbox_lists_it(pop_user, dovecot_account, alice_client, celery_worker):
    delivered = {}
    for i in range(20):
        raw = build_message(f"Celery {i:02d}", f"body {i}", message_id=f"<c{i}@x>")
        pop_user.deliver(raw)
        delivered[hashlib.sha256(raw).hexdigest()] = raw
    account = dovecot_account(policy="keep")

    tasks.poll_due_accounts.delay()
    wait_for(lambda: MailAccount.objects.get(id=account.id).last_success_at is not None)

    rows = list(Message.objects.filter(account=account))
    assert len(rows) == 20
    for row in rows:
        assert hashlib.sha256(store.path_of(row.raw_path).read_bytes()).hexdigest() == row.sha256
    assert {row.sha256 for row in rows} == set(delivered)

    page = alice_client.get(reverse("mailbox:inbox")).content.decode()
    for i in range(20):
        assert f"Celery {i:02d}" in page
    assert page.count('class="unread"') == 20
    assert pop_user.sha256s() == set(delivered)

    # The poll claimed the account: a second poll right away enqueues nothing.
    assert tasks.poll_due_accounts() == 0


def test_check_now_enqueues_a_sync_that_the_worker_runs(pop_user, dovecot_account, alice_client, celery_worker):
    account = dovecot_account()
    MailAccount.objects.filter(id=account.id).update(last_success_at=None)
    pop_user.deliver(build_message("Right now"))
    response = alice_client.post(reverse("accounts:check_now", args=[account.id]))
    assert response.status_code == 302
    wait_for(lambda: Message.objects.filter(account=account, subject="Right now").exists())
