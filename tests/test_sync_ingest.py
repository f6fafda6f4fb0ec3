"""Large downloads: parsed, stored and committed a batch at a time; a failure loses nothing.

Transactional tests: the rows are committed as in a worker. Nothing of a batch
whose commit failed is DELE'd; kills of the worker at each step are
tests/test_sync_crash.py, a full disk tests/test_sync_disk_full.py.
"""

import hashlib

import pytest

from mailbox import sync
from mailbox.models import Attachment, Message
from mailbox.sync.session import Session
from tests.factories import build_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.sqlite]


def deliver(pop_user, count, **kwargs):
    raws = [
        build_message(f"batch {i}", f"body {i}\n" * (i + 1), message_id=f"<batch{i}@x>", **kwargs) for i in range(count)
    ]
    for raw in raws:
        pop_user.deliver(raw)
    return raws


def test_large_download_is_committed_batch_by_batch_exactly_once(pop_user, dovecot_account, monkeypatch):
    monkeypatch.setattr(Session, "BATCH_MESSAGES", 7)  # several batches, committed one after another
    raws = deliver(pop_user, 40, attachments=[("a.txt", "text/plain", b"attached")])
    account = dovecot_account(policy="delete")
    committed = []
    real_commit = Session.commit_batch

    def recording_commit(self, job):
        committed.append(job.count)
        return real_commit(self, job)

    monkeypatch.setattr(Session, "commit_batch", recording_commit)
    result = sync.sync_account(account.id)

    assert (result.error, result.fetched, result.skipped, result.deleted_on_server) == (None, 40, 0, 40)
    assert committed == [7, 7, 7, 7, 7, 5]
    assert {m.sha256 for m in Message.objects.filter(account=account)} == {hashlib.sha256(r).hexdigest() for r in raws}
    assert Attachment.objects.filter(message__account=account).count() == 40
    account.refresh_from_db()
    assert (account.progress_done, account.progress_total) == (40, 40)
    assert pop_user.messages() == []
    assert sync.sync_account(account.id).fetched == 0


def test_skipped_and_committed_messages_are_counted_once(pop_user, dovecot_account):
    from accounts.models import MailAccount

    deliver(pop_user, 5)
    pop_user.deliver(build_message("Huge", "x", attachments=[("v.bin", "application/octet-stream", b"\0" * 50_000)]))
    account = dovecot_account()
    MailAccount.objects.filter(id=account.id).update(max_message_bytes=20_000)  # skipped by the session

    result = sync.sync_account(account.id)

    assert (result.fetched, result.skipped) == (5, 1)


def test_failed_commit_deletes_nothing_on_the_server(pop_user, dovecot_account, monkeypatch):
    deliver(pop_user, 12)
    account = dovecot_account(policy="delete")

    def broken(self, job):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Session, "commit_batch", broken)
    result = sync.sync_account(account.id)

    assert result.error_class == "internal"
    assert Message.objects.filter(account=account).count() == 0
    assert len(pop_user.messages()) == 12  # no DELE of what has no committed row
    monkeypatch.undo()
    assert sync.sync_account(account.id).fetched == 12


@pytest.mark.parametrize("fails", ["commit_batch", "prepare_batch"])
def test_a_failure_mid_download_keeps_the_earlier_batches_deletes_nothing_and_the_next_sync_completes(
    pop_user, dovecot_account, monkeypatch, fails
):
    monkeypatch.setattr(Session, "BATCH_MESSAGES", 5)
    raws = deliver(pop_user, 20)
    account = dovecot_account(policy="delete")
    real = getattr(Session, fails)
    calls = []

    def fails_on_second_batch(self, batch):
        calls.append(batch)
        if len(calls) == 2:
            raise RuntimeError("database went away" if fails == "commit_batch" else "parser on fire")
        return real(self, batch)

    monkeypatch.setattr(Session, fails, fails_on_second_batch)
    result = sync.sync_account(account.id)

    assert result.error_class == "internal"
    assert len(pop_user.messages()) == 20
    assert Message.objects.filter(account=account).count() == 5  # the batch committed before stands
    monkeypatch.undo()
    again = sync.sync_account(account.id)
    assert again.error is None and again.fetched == 15
    assert {m.sha256 for m in Message.objects.filter(account=account)} == {hashlib.sha256(r).hexdigest() for r in raws}
    assert pop_user.messages() == []


def test_each_batch_is_committed_before_the_next_is_fetched(pop_user, dovecot_account, monkeypatch):
    """Parsed messages and files without rows stay bounded however large the download: one batch at a time,
    its rows committed before another message is retrieved."""
    monkeypatch.setattr(Session, "BATCH_MESSAGES", 3)
    raws = deliver(pop_user, 17)  # six batches
    account = dovecot_account()
    events = []
    real_prepare, real_commit, real_store = Session.prepare_batch, Session.commit_batch, Session._store_raw

    def prepare(self, batch):
        events.append(("parse", len(batch)))
        return real_prepare(self, batch)

    def commit(self, job):
        real_commit(self, job)
        events.append(("commit", job.count))

    def store_raw(self, *args, **kwargs):
        events.append(("retrieved", 1))
        return real_store(self, *args, **kwargs)

    monkeypatch.setattr(Session, "prepare_batch", prepare)
    monkeypatch.setattr(Session, "commit_batch", commit)
    monkeypatch.setattr(Session, "_store_raw", store_raw)
    result = sync.sync_account(account.id)

    assert (result.error, result.fetched) == (None, 17)
    expected = []
    for size in (3, 3, 3, 3, 3, 2):
        expected += [("retrieved", 1)] * size + [("parse", size), ("commit", size)]
    assert events == expected
    assert {m.sha256 for m in Message.objects.filter(account=account)} == {hashlib.sha256(r).hexdigest() for r in raws}


def test_temp_files_are_cleaned_up_after_a_parse_failure(pop_user, dovecot_account, monkeypatch, settings):
    deliver(pop_user, 6)
    account = dovecot_account()

    def broken(self, batch):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Session, "prepare_batch", broken)
    assert sync.sync_account(account.id).error_class == "internal"
    spool = settings.WEBPOP_MAIL_DIR / "tmp"
    assert not spool.exists() or list(spool.iterdir()) == []
