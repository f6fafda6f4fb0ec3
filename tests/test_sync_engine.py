"""Sync engine behaviour against real Dovecot: limits, quarantine, dedupe, leases, records."""

import datetime as dt
import hashlib
import os
import subprocess
import sys

import pytest
from django.utils import timezone

from accounts.models import MailAccount, Profile
from mailbox import durability, store, sync
from mailbox.models import FetchFailure, Message, SyncRun, UidlAlias
from mailbox.sync import lease
from mailbox.sync.session import Session
from tests.factories import build_message

pytestmark = [pytest.mark.django_db, pytest.mark.dovecot, pytest.mark.sqlite]


def deliver(pop_user, count, prefix="m", **kwargs):
    raws = [build_message(f"{prefix} {i}", f"body {i}", message_id=f"<{prefix}{i}@x>", **kwargs) for i in range(count)]
    for raw in raws:
        pop_user.deliver(raw)
    return raws


def test_big_mailbox_is_fetched_in_sessions(pop_user, dovecot_account, settings):
    settings.WEBPOP_SYNC_MAX_MESSAGES = 10
    deliver(pop_user, 25)
    account = dovecot_account()
    fetched = []
    for _ in range(3):
        result = sync.sync_account(account.id)
        assert result.error is None
        fetched.append(result.fetched)
        account.refresh_from_db()
        if result.fetched == 10:
            assert account.next_poll_at <= timezone.now()  # the next chunk comes right away
    assert fetched == [10, 10, 5]
    assert account.next_poll_at > timezone.now() + dt.timedelta(seconds=200)
    assert (account.progress_done, account.progress_total) == (25, 25)
    assert Message.objects.filter(account=account).count() == 25


def test_too_large_message_is_skipped_with_its_headers_and_the_rest_flows(pop_user, dovecot_account):
    deliver(pop_user, 3)
    pop_user.deliver(build_message("Huge video", "x", attachments=[("v.mp4", "video/mp4", b"\0" * 200_000)]))
    account = dovecot_account(policy="delete")
    MailAccount.objects.filter(id=account.id).update(max_message_bytes=100_000)
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched, result.skipped, result.deleted_on_server) == (None, 3, 1, 3)
    failure = FetchFailure.objects.get(account=account)
    assert (failure.reason, failure.subject) == ("too_large", "Huge video")
    assert failure.size > 100_000
    # Never deleted from the server, never fetched again.
    assert len(pop_user.messages()) == 1
    again = sync.sync_account(account.id)
    assert (again.fetched, again.skipped) == (0, 0)


def test_quota_stops_fetching_and_deletes_nothing_because_of_it(pop_user, dovecot_account, alice):
    raws = deliver(pop_user, 5)
    Profile.objects.create(user=alice, storage_quota_bytes=len(raws[0]) * 2 + 10)
    account = dovecot_account(policy="delete")
    result = sync.sync_account(account.id)
    assert result.error_class == "quota"
    assert result.fetched == 2
    # The session ended without QUIT: nothing was deleted, not even what was stored.
    assert len(pop_user.messages()) == 5
    account.refresh_from_db()
    assert account.last_error_class == "quota"
    assert "Nothing is deleted from the server" in account.last_error


def test_same_message_listed_twice_is_stored_once_and_both_copies_deleted(pop_user, dovecot_account):
    raw = build_message("Twice", "same bytes", message_id="<twice@x>")
    pop_user.deliver(raw)
    pop_user.deliver(raw)
    account = dovecot_account(policy="delete")
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched, result.skipped) == (None, 1, 1)
    assert Message.objects.filter(account=account).count() == 1
    assert UidlAlias.objects.filter(account=account).count() == 1
    assert pop_user.messages() == []
    assert result.deleted_on_server == 1


def test_sync_run_is_recorded(pop_user, dovecot_account):
    raws = deliver(pop_user, 4)
    account = dovecot_account()
    sync.sync_account(account.id)
    run = SyncRun.objects.get(account=account)
    assert (run.fetched, run.bytes, run.error_class) == (4, sum(map(len, raws)), "")
    assert run.finished_at >= run.started_at
    assert ":" in run.worker


def test_auth_failure_backs_off_for_an_hour_and_never_disables(pop_user, dovecot_account):
    account = dovecot_account(password="wrong")
    for _ in range(2):
        MailAccount.objects.filter(id=account.id).update(next_poll_at=timezone.now())
        sync.sync_account(account.id)
    account.refresh_from_db()
    assert account.enabled
    assert account.consecutive_failures == 2
    assert account.next_poll_at > timezone.now() + dt.timedelta(minutes=90)
    assert "Check the user name and password" in account.last_error


def test_lease_of_a_killed_worker_on_this_host_is_taken_over(pop_user, dovecot_account):
    account = dovecot_account()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    MailAccount.objects.filter(id=account.id).update(
        sync_lease_until=timezone.now() + dt.timedelta(minutes=10),
        sync_lease_token="t" * 32,
        sync_lease_owner=f"{os.uname().nodename}:{dead.stdout.strip()}",
    )
    assert sync.sync_account(account.id).error is None


def test_lease_of_a_live_worker_is_respected(pop_user, dovecot_account):
    account = dovecot_account()
    MailAccount.objects.filter(id=account.id).update(
        sync_lease_until=timezone.now() + dt.timedelta(minutes=10),
        sync_lease_token="t" * 32,
        sync_lease_owner=f"{os.uname().nodename}:{os.getpid()}",
    )
    assert sync.sync_account(account.id).error_class == "busy"
    assert SyncRun.objects.count() == 0


def test_lost_lease_stops_the_sync_without_quit(pop_user, dovecot_account, monkeypatch):
    deliver(pop_user, 8)
    account = dovecot_account(policy="delete")
    monkeypatch.setattr(Session, "RENEW_SECONDS", 0.0)
    real_renew = lease.renew_lease

    def stolen(account_id, token):
        MailAccount.objects.filter(id=account_id).update(sync_lease_token="someone-else")
        real_renew(account_id, token)

    monkeypatch.setattr(lease, "renew_lease", stolen)  # where the session calls it
    result = sync.sync_account(account.id)
    assert result.error_class == "busy"
    assert len(pop_user.messages()) == 8  # no QUIT: no DELE took effect


def test_messages_deleted_elsewhere_are_marked_gone(pop_user, dovecot_account):
    deliver(pop_user, 3)
    account = dovecot_account()
    sync.sync_account(account.id)
    for path in pop_user.server.maildir(pop_user.name).glob("*/*"):
        if path.is_file():
            path.unlink()
    sync.sync_account(account.id)
    assert set(Message.objects.filter(account=account).values_list("server_state", flat=True)) == {"gone"}


def test_stored_raw_bytes_match_sha256_for_every_message(pop_user, dovecot_account):
    raws = deliver(pop_user, 5, attachments=[("a.bin", "application/octet-stream", os.urandom(5000))])
    account = dovecot_account()
    sync.sync_account(account.id)
    assert {m.sha256 for m in Message.objects.filter(account=account)} == {hashlib.sha256(r).hexdigest() for r in raws}


def test_no_row_is_committed_before_its_files_are_durable(pop_user, dovecot_account, monkeypatch):
    monkeypatch.setattr(Session, "BATCH_MESSAGES", 5)  # several batches, each synced on its own
    deliver(pop_user, 12, attachments=[("notes.txt", "text/plain", b"some notes")])
    synced: set = set()
    committed, not_yet_durable = [], []
    real_make_durable, real_save_messages = durability._make_durable, store.save_messages

    def make_durable(paths):
        real_make_durable(paths)
        synced.update(paths)

    def save_messages(account, items, attachments=None):
        files = [raw.relpath for _uidl, raw, _parsed in items]
        files += [blob.relpath for blobs in attachments or [] for _att, blob in blobs]
        local = store.root()
        not_yet_durable.extend(relpath for relpath in files if local / relpath not in synced)
        committed.extend(files)
        return real_save_messages(account, items, attachments)

    monkeypatch.setattr(durability, "_make_durable", make_durable)
    monkeypatch.setattr(store, "save_messages", save_messages)
    result = sync.sync_account(dovecot_account().id)
    assert (result.error, result.fetched) == (None, 12)
    assert len(committed) == 24  # 12 messages and their 12 attachments, in batches
    assert not_yet_durable == []
