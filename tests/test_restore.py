"""Backup and restore, as docs/deployment.md describes it, against a real Dovecot.

The database is backed up first (pg_dump on PostgreSQL, the online backup API on SQLite), then the
mail store is copied; mail arrives and is synced after the backup; the backup is restored; the
next sync must fetch again what the server still has, duplicate nothing, lose nothing the backup
held (byte for byte), and never make the server delete a message the restored site does not hold.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import sqlite3
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, connections

from mailbox import restore_check, store, sync, verify
from mailbox.models import DamagedFile, Message, ServerState
from tests.factories import build_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.sqlite]


class Backup:
    """The database, then the mail store, as an operator backs them up."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.store = folder / "store"

    def take(self) -> None:
        self._dump_database()
        shutil.copytree(store.root(), self.store)

    def restore(self, *, store_too: bool = True) -> None:
        connections.close_all()  # as when the site is stopped for the restore
        self._restore_database()
        if store_too:
            shutil.rmtree(store.root())
            shutil.copytree(self.store, store.root())
        cache.clear()  # Redis holds only caches and queued tasks: emptied with a restore

    def _dump_database(self) -> None:
        params = connection.settings_dict
        if connection.vendor == "sqlite":
            with sqlite3.connect(params["NAME"]) as live, sqlite3.connect(self.folder / "db.sqlite3") as copy:
                live.backup(copy)
            return
        subprocess.run([*self._pg("pg_dump"), "--format=custom", "--file", str(self.folder / "db.dump")], check=True)

    def _restore_database(self) -> None:
        params = connection.settings_dict
        if connection.vendor == "sqlite":
            with sqlite3.connect(self.folder / "db.sqlite3") as copy, sqlite3.connect(params["NAME"]) as live:
                copy.backup(live)
            return
        restore = [*self._pg("pg_restore"), "--clean", "--if-exists", "--single-transaction", "--no-owner"]
        subprocess.run([*restore, str(self.folder / "db.dump")], check=True)

    def _pg(self, program: str) -> list[str]:
        params = connection.settings_dict
        return [
            program,
            f"--host={params['HOST']}",
            f"--port={params['PORT']}",
            f"--username={params['USER']}",
            f"--dbname={params['NAME']}",
        ]


@pytest.fixture
def backup(tmp_path) -> Backup:
    folder = tmp_path / "backup"
    folder.mkdir()
    return Backup(folder)


def mail(n: int) -> bytes:
    extra = [("notes.txt", "text/plain", f"notes of message {n}\n".encode() * 30)] if n % 2 else []
    return build_message(f"Message {n}", f"Body {n}.\n.leading dot\n", message_id=f"<r{n}@x>", attachments=extra)


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def stored(account) -> dict[str, bytes]:
    """sha256 -> the stored bytes of each of the account's messages; fails on a duplicate."""
    rows = list(Message.objects.filter(account=account).exclude(raw_path="").values_list("sha256", "raw_path"))
    assert len(rows) == len({s for s, _path in rows}), "a message is stored twice"
    return {s: store.path_of(path).read_bytes() for s, path in rows}


def synced(account) -> sync.SyncResult:
    result = sync.sync_account(account.id)
    assert result.error is None, result
    return result


def check_restore(*args: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        try:
            call_command("checkrestore", *args, stdout=out)
        except SystemExit as exc:
            out.write(f"exit {exc.code}")
    return out.getvalue()


@pytest.mark.parametrize("store_too", [True, False], ids=["store-restored", "store-survived"])
def test_keep_mail_that_arrived_after_the_backup_is_fetched_again(pop_user, dovecot_account, backup, store_too):
    account = dovecot_account(policy="keep")
    before = [mail(1), mail(2)]
    for raw in before:
        pop_user.deliver(raw)
    assert synced(account).fetched == 2
    backup.take()

    after = [mail(3), mail(4)]
    for raw in after:
        pop_user.deliver(raw)
    assert synced(account).fetched == 2
    everything = {sha(raw): raw for raw in before + after}
    assert stored(account) == everything

    backup.restore(store_too=store_too)
    assert stored(account) == {sha(raw): raw for raw in before}
    orphans = {store.sha_of(o.relpath) for o in restore_check.check().orphans if o.relpath.startswith("raw/")}
    assert orphans == (set() if store_too else {sha(raw) for raw in after})  # the newer store's files

    result = synced(account)
    assert (result.fetched, result.deleted_on_server) == (2, 0)  # what arrived after the backup, once
    assert stored(account) == everything  # byte for byte, nothing twice
    assert pop_user.sha256s() == set(everything)  # "keep": the server still has it all
    assert synced(account).fetched == 0
    assert not verify.verify().damaged and not DamagedFile.objects.exists()
    assert check_restore().endswith("0 missing; 0 orphaned files (0 bytes) no row references\n")


def test_delete_after_fetch_loses_nothing_the_backup_held_and_deletes_nothing_it_lacks(
    pop_user, dovecot_account, backup, tmp_path
):
    account = dovecot_account(policy="delete")
    before = [mail(1), mail(2)]
    for raw in before:
        pop_user.deliver(raw)
    assert synced(account).deleted_on_server == 2
    waiting = mail(3)
    pop_user.deliver(waiting)  # on the server when the backup is taken, not fetched yet
    backup.take()

    later = mail(5)
    pop_user.deliver(later)
    assert (synced(account).fetched, pop_user.sha256s()) == (2, set())  # fetched and deleted on the server

    # The database is lost and restored from the backup; the mail store survived (it is newer).
    backup.restore(store_too=False)
    held = {sha(raw): raw for raw in before}
    assert stored(account) == held
    assert set(Message.objects.filter(account=account).values_list("server_state", flat=True)) == {ServerState.GONE}

    # What was fetched after the backup lives on only as files no row references: listed, saved, not deleted.
    report = restore_check.check()
    orphaned = {store.sha_of(o.relpath) for o in report.orphans if o.relpath.startswith("raw/")}
    assert (report.missing, orphaned) == ([], {sha(waiting), sha(later)})
    out = check_restore("--save-orphans", str(tmp_path / "orphans"))
    assert "exit" not in out and f"orphan {report.orphans[0].relpath} (" in out
    saved = {p.read_bytes() for p in (tmp_path / "orphans").glob("*.eml")}
    assert saved == {waiting, later}  # byte for byte, ready to import
    assert all(store.path_of(o.relpath).exists() for o in report.orphans)

    newest = mail(7)
    pop_user.deliver(newest)
    on_server = pop_user.sha256s()
    result = synced(account)
    assert (result.fetched, result.deleted_on_server) == (1, 1)
    gone_from_server = on_server - pop_user.sha256s()
    everything = stored(account)
    assert everything == {**held, sha(newest): newest}  # nothing the backup held lost, nothing twice
    assert gone_from_server <= set(everything)  # the server deleted only what the restored site holds
    assert not verify.verify().damaged


def test_a_store_older_than_the_database_shows_as_missing_files(pop_user, dovecot_account, backup):
    """The wrong order (store first, then database): rows whose files the store copy lacks are reported."""
    account = dovecot_account(policy="keep")
    pop_user.deliver(mail(1))
    synced(account)
    shutil.copytree(store.root(), backup.store)  # the store first ...
    pop_user.deliver(mail(2))
    synced(account)
    backup._dump_database()  # ... then the database: it has a row the store copy has no file for
    backup.restore()

    out = check_restore()
    [late] = Message.objects.filter(subject="Message 2")
    assert f"missing {late.raw_path}\n  message {late.id} of user alice" in out
    assert out.endswith("exit 1")
    assert DamagedFile.objects.get(relpath=late.raw_path).kind == "missing"
    # Its server still has it ("keep"): verifystore --repair fetches it again.
    call_command("verifystore", "--repair", "--quiet", stdout=io.StringIO())
    assert stored(account)[late.sha256] == mail(2)
    assert not DamagedFile.objects.exists()
