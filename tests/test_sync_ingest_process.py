"""Large downloads are parsed and stored in a forked child process; its failures lose nothing.

These need committed rows (a child has its own database connection), so they
use transactional tests. Monkeypatches made here are inherited by the child,
which is how a failure is injected into it.
"""

import hashlib
import os
import signal

import pytest

from mailbox import sync
from mailbox.models import Attachment, Message
from mailbox.sync.session import Session
from tests.factories import build_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.sqlite]


@pytest.fixture(autouse=True)
def _always_fork(settings):
    settings.WEBPOP_SYNC_INGEST_PROCESS_MIN = 1


def deliver(pop_user, count, **kwargs):
    raws = [
        build_message(f"fork {i}", f"body {i}\n" * (i + 1), message_id=f"<fork{i}@x>", **kwargs) for i in range(count)
    ]
    for raw in raws:
        pop_user.deliver(raw)
    return raws


def test_large_download_is_stored_by_a_child_process_exactly_once(pop_user, dovecot_account, monkeypatch):
    monkeypatch.setattr(Session, "BATCH_MESSAGES", 7)  # several batches, acknowledged one by one
    raws = deliver(pop_user, 40, attachments=[("a.txt", "text/plain", b"attached")])
    account = dovecot_account(policy="delete")

    result = sync.sync_account(account.id)

    assert (result.error, result.fetched, result.skipped, result.deleted_on_server) == (None, 40, 0, 40)
    assert result.ingest_peak_rss_kb > 0  # the child did the work and reported on it
    assert {m.sha256 for m in Message.objects.filter(account=account)} == {hashlib.sha256(r).hexdigest() for r in raws}
    assert Attachment.objects.filter(message__account=account).count() == 40
    account.refresh_from_db()
    assert (account.progress_done, account.progress_total) == (40, 40)
    assert pop_user.messages() == []
    assert sync.sync_account(account.id).fetched == 0


def test_counts_of_parent_and_child_are_not_double_counted(pop_user, dovecot_account, monkeypatch):
    from accounts.models import MailAccount

    deliver(pop_user, 5)
    pop_user.deliver(build_message("Huge", "x", attachments=[("v.bin", "application/octet-stream", b"\0" * 50_000)]))
    account = dovecot_account()
    MailAccount.objects.filter(id=account.id).update(max_message_bytes=20_000)  # skipped by the parent

    result = sync.sync_account(account.id)

    assert (result.fetched, result.skipped) == (5, 1)


def test_child_failure_deletes_nothing_on_the_server(pop_user, dovecot_account, monkeypatch):
    deliver(pop_user, 12)
    account = dovecot_account(policy="delete")

    def broken(self, job):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Session, "commit_batch", broken)
    result = sync.sync_account(account.id)

    assert result.error_class == "internal"
    assert Message.objects.filter(account=account).count() == 0
    assert len(pop_user.messages()) == 12  # no DELE without the child's word that rows are committed
    monkeypatch.undo()
    assert sync.sync_account(account.id).fetched == 12


def test_child_killed_mid_download_deletes_nothing_and_the_next_sync_completes(pop_user, dovecot_account, monkeypatch):
    monkeypatch.setattr(Session, "BATCH_MESSAGES", 5)
    raws = deliver(pop_user, 20)
    account = dovecot_account(policy="delete")
    real_prepare = Session.prepare_batch
    calls = []

    def dies_on_second_batch(self, batch):
        calls.append(len(batch))  # in the child's memory only
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_prepare(self, batch)

    monkeypatch.setattr(Session, "prepare_batch", dies_on_second_batch)
    result = sync.sync_account(account.id)

    assert result.error_class == "internal"
    assert len(pop_user.messages()) == 20
    stored_first = Message.objects.filter(account=account).count()
    assert stored_first <= 5  # at most the batch committed before the kill
    monkeypatch.undo()
    again = sync.sync_account(account.id)
    assert again.error is None and again.fetched == 20 - stored_first
    assert {m.sha256 for m in Message.objects.filter(account=account)} == {hashlib.sha256(r).hexdigest() for r in raws}
    assert pop_user.messages() == []


def test_temp_files_are_cleaned_up_after_a_child_failure(pop_user, dovecot_account, monkeypatch, settings):
    deliver(pop_user, 6)
    account = dovecot_account()

    def broken(self, batch):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Session, "prepare_batch", broken)
    assert sync.sync_account(account.id).error_class == "internal"
    spool = settings.WEBPOP_MAIL_DIR / "tmp"
    assert not spool.exists() or list(spool.iterdir()) == []
