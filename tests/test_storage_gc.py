"""Freeing stored files: the collector, released files and their sweep, never a file some row references."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts import actions as account_actions
from mailbox import actions, storage_gc, storage_refs, store, sync, tasks
from mailbox.models import Attachment, FetchFailure, FileToFree, Message
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 64


def _age(path: Path, seconds: float = 3600 * 24) -> None:
    """Make a stored file look old, as if written long ago."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def _age_all(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            _age(path)


def _stored_raw(raw: bytes) -> store.StoredFile:
    """Raw bytes in the store as a sync keeps them, with no message row (yet)."""
    with store.temp_file() as fh:
        fh.write(raw)
    return store.commit_raw(Path(fh.name), expected_size=len(raw), expected_sha256=hashlib.sha256(raw).hexdigest())


def _quarantine(account, raw: bytes, uidl: str = "bad-1") -> FetchFailure:
    """A message that failed to parse three times: its raw bytes are kept only for the owner to download."""
    stored = _stored_raw(raw)
    return FetchFailure.objects.create(
        account=account, uidl=uidl, size=stored.size, attempts=3, error="ValueError: unparsable",
        raw_path=stored.relpath, quarantined_at=timezone.now(),
    )  # fmt: skip


def test_gc_frees_old_unreferenced_files_and_never_a_referenced_one(alice, settings):
    root = Path(settings.WEBPOP_MAIL_DIR)
    kept = store_message(
        make_account(alice), build_message("Kept", attachments=[("k.pdf", "application/pdf", PDF)]), "u1"
    )
    orphan = store.write_blob(b"nobody points at me")
    young = store.write_blob(b"just written, its row may be on its way")
    for path in root.rglob("*"):
        if path.is_file() and young.relpath not in str(path):
            _age(path)
    report = storage_gc.collect_garbage()
    assert report.freed == [(orphan.relpath, len(b"nobody points at me"))]
    assert report.kept_young == 1
    assert not (root / orphan.relpath).exists()
    assert (root / young.relpath).exists()
    assert (root / kept.raw_path).exists()
    assert (root / kept.attachments.get().stored_path).exists()


def test_files_in_the_earlier_two_level_layout_are_still_read_and_collected(alice, settings):
    root = Path(settings.WEBPOP_MAIL_DIR)
    message = store_message(make_account(alice), build_message("Old layout"), "u1")
    sha = message.sha256
    old = f"raw/{sha[:2]}/{sha[2:4]}/{sha}.eml"
    (root / old).parent.mkdir(parents=True)
    os.replace(root / message.raw_path, root / old)
    Message.objects.filter(id=message.id).update(raw_path=old)
    with store.open_file(old) as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == sha
    orphan_sha = "f" * 64
    orphan = root / f"att/ff/ff/{orphan_sha}"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by an earlier version")
    _age(root / old)
    _age(orphan)
    report = storage_gc.collect_garbage()
    assert report.freed == [(f"att/ff/ff/{orphan_sha}", len(b"left by an earlier version"))]
    assert (root / old).exists()


def test_gcstorage_dry_run_lists_without_freeing_and_the_real_run_frees(settings):
    root = Path(settings.WEBPOP_MAIL_DIR)
    orphan = store.write_blob(b"orphan")
    _age(root / orphan.relpath)
    out = StringIO()
    call_command("gcstorage", "--dry-run", stdout=out)
    assert f"would free {orphan.relpath} (6 bytes)" in out.getvalue()
    assert (root / orphan.relpath).exists()
    out = StringIO()
    call_command("gcstorage", stdout=out)
    assert f"freed {orphan.relpath} (6 bytes)" in out.getvalue()
    assert "freed 1 files, 6 bytes" in out.getvalue()
    assert not (root / orphan.relpath).exists()


def test_gcstorage_grace_zero_frees_even_new_orphans(settings):
    orphan = store.write_blob(b"fresh orphan")
    call_command("gcstorage", "--grace-minutes", "0", stdout=StringIO())
    assert not (Path(settings.WEBPOP_MAIL_DIR) / orphan.relpath).exists()


def test_gc_frees_temp_files_left_by_a_crash_only_when_old(settings):
    tmp_dir = Path(settings.WEBPOP_MAIL_DIR) / "tmp"
    with store.temp_file() as old:
        old.write(b"half a download")
    with store.temp_file() as current:
        current.write(b"a download in progress")
    _age(Path(old.name), 3 * 24 * 3600)
    report = storage_gc.collect_garbage()
    assert report.freed == [(f"tmp/{Path(old.name).name}", 15)]
    assert [p.name for p in tmp_dir.iterdir()] == [Path(current.name).name]


def test_freeing_gives_way_to_the_same_content_being_stored_again(settings, monkeypatch):
    """A store of identical bytes racing the free must end with the file in place."""
    root = Path(settings.WEBPOP_MAIL_DIR)
    blob = store.write_blob(b"contested")
    _age(root / blob.relpath)
    real = storage_refs.is_referenced
    calls = []

    def stored_again_meanwhile(relpath):
        if not calls:
            store.write_blob(b"contested")  # refreshes the file before its row commits
        calls.append(relpath)
        return real(relpath)

    monkeypatch.setattr(storage_refs, "is_referenced", stored_again_meanwhile)
    result = storage_gc.free_file(blob.relpath)
    assert result.outcome is storage_gc.Outcome.YOUNG and result.retry_at > timezone.now()
    assert (root / blob.relpath).read_bytes() == b"contested"


# --- Quarantined mail: its raw bytes are referenced by the failure row ----------------


def test_gc_never_frees_the_raw_file_of_a_quarantined_message(alice, settings):
    root = Path(settings.WEBPOP_MAIL_DIR)
    failure = _quarantine(make_account(alice), b"Subject: =?broken?=\r\n\r\nkept for download\r\n")
    orphan = store.write_blob(b"nobody points at me")
    _age_all(root)
    report = storage_gc.collect_garbage()
    assert report.freed == [(orphan.relpath, len(b"nobody points at me"))]
    assert (root / failure.raw_path).read_bytes().endswith(b"kept for download\r\n")
    # Once the failure is forgotten, nothing references the bytes any more.
    FetchFailure.objects.filter(id=failure.id).delete()
    assert storage_gc.collect_garbage().freed == [(failure.raw_path, failure.size)]


def test_a_quarantined_file_is_referenced_by_content_in_any_layout_or_folder(alice, settings):
    """Like messages and attachments, a failure keeps its content whichever name it was kept under."""
    root = Path(settings.WEBPOP_MAIL_DIR)
    failure = _quarantine(make_account(alice), b"Subject: two names\r\n\r\nsame bytes\r\n")
    sha = store.sha_of(failure.raw_path)
    old_layout = f"raw/{sha[:2]}/{sha[2:4]}/{sha}.eml"
    FetchFailure.objects.filter(id=failure.id).update(raw_path=old_layout)
    assert storage_refs.referenced_shas([sha, "0" * 64]) == {sha}
    _age(root / failure.raw_path)
    assert storage_gc.collect_garbage().freed == []
    assert storage_gc.free_file(failure.raw_path).outcome is storage_gc.Outcome.REFERENCED


def test_a_released_file_that_a_quarantined_message_still_needs_is_kept(alice, settings):
    root = Path(settings.WEBPOP_MAIL_DIR)
    account = make_account(alice)
    raw = build_message("Stored, and also quarantined in another account")
    message = store_message(account, raw, "u1")
    failure = _quarantine(make_account(alice, username="second"), raw)
    assert failure.raw_path == message.raw_path
    _age_all(root)
    storage_gc.purge_messages([message])
    report = storage_gc.free_released()
    assert (report.freed, report.kept) == (0, 1)
    assert (root / failure.raw_path).read_bytes() == raw
    assert not FileToFree.objects.exists()  # done with: the failure's own release frees it later


def test_retrying_a_quarantined_message_releases_its_kept_bytes(alice, settings):
    root = Path(settings.WEBPOP_MAIL_DIR)
    failure = _quarantine(make_account(alice), b"Subject: retry me\r\n\r\nx\r\n")
    _age_all(root)
    sync.retry_failure(failure)
    assert storage_gc.free_released().freed == 1
    assert not (root / failure.raw_path).exists()


def test_deleting_an_account_releases_every_file_of_its_rows_quarantined_mail_included(alice, settings):
    root = Path(settings.WEBPOP_MAIL_DIR)
    account = make_account(alice)
    message = store_message(account, build_message("Mine", attachments=[("a.pdf", "application/pdf", PDF)]), "u1")
    attachment = message.attachments.get().stored_path
    failure = _quarantine(account, b"Subject: broken\r\n\r\nquarantined\r\n")
    _age_all(root)
    assert account_actions.delete_account(account) == 1
    assert sorted(FileToFree.objects.values_list("relpath", flat=True)) == sorted(
        [message.raw_path, attachment, failure.raw_path]
    )
    assert storage_gc.free_released().freed == 3
    assert not any(path.is_file() for path in (root / "raw").rglob("*"))
    assert not any(path.is_file() for path in (root / "att").rglob("*"))


# --- Released files and their sweep ---------------------------------------------------


def test_purge_deletes_rows_and_frees_files_nothing_else_references(
    alice, settings, monkeypatch, django_capture_on_commit_callbacks
):
    woken = []
    monkeypatch.setattr(tasks.free_released_files, "delay", lambda: woken.append(True))
    root = Path(settings.WEBPOP_MAIL_DIR)
    account = make_account(alice)
    doomed = store_message(
        account,
        build_message(
            "Doomed", attachments=[("shared.pdf", "application/pdf", PDF), ("own.txt", "text/plain", b"mine")]
        ),
        "u1",
    )
    keeper = store_message(account, build_message("Keeper", attachments=[("shared.pdf", "application/pdf", PDF)]), "u2")
    _age_all(root)
    own = doomed.attachments.get(filename="own.txt").stored_path
    with django_capture_on_commit_callbacks(execute=True):
        assert storage_gc.purge_messages(Message.objects.filter(id=doomed.id)) == 1
    assert woken == []  # storage_gc publishes nothing: the action that deletes wakes a worker
    assert not Message.objects.filter(id=doomed.id).exists()
    assert not Attachment.objects.filter(message_id=doomed.id).exists()
    assert FileToFree.objects.count() == 3  # raw file and both attachments, until the sweep

    report = storage_gc.free_released()

    assert (report.freed, report.kept, report.later) == (2, 1, 0)
    assert not (root / doomed.raw_path).exists()
    assert not (root / own).exists()
    assert (root / keeper.raw_path).exists()
    assert (root / keeper.attachments.get().stored_path).read_bytes() == PDF
    assert not FileToFree.objects.exists()


def test_a_file_stored_moments_ago_is_freed_after_its_grace_period(alice, settings):
    root = Path(settings.WEBPOP_MAIL_DIR)
    message = store_message(make_account(alice), build_message("Brand new"), "u1")
    storage_gc.purge_messages([message])

    report = storage_gc.free_released()

    assert (report.freed, report.later) == (0, 1)
    assert (root / message.raw_path).exists()  # the same content may be on its way in again
    row = FileToFree.objects.get()
    assert row.claim == "" and row.not_before > timezone.now() + storage_gc.GC_GRACE - dt.timedelta(minutes=1)
    assert storage_gc.free_released().freed == 0  # not due yet
    _age(root / message.raw_path)
    FileToFree.objects.update(not_before=timezone.now())  # its time has come
    assert storage_gc.free_released().freed == 1
    assert not (root / message.raw_path).exists()
    assert not FileToFree.objects.exists()


def test_a_sweep_claims_rows_so_no_other_takes_them_until_its_lease_runs_out(settings):
    root = Path(settings.WEBPOP_MAIL_DIR)
    blob = store.write_blob(b"released")
    _age(root / blob.relpath)
    storage_gc.release([blob.relpath])

    token, rows = storage_gc._claim(10)  # a sweep that takes the row, then dies
    assert [row.relpath for row in rows] == [blob.relpath] and token
    assert storage_gc._claim(10) == ("", [])  # nothing due for another sweep
    assert storage_gc.free_released().freed == 0
    assert (root / blob.relpath).exists()

    FileToFree.objects.update(not_before=timezone.now() - dt.timedelta(seconds=1))  # the lease ran out
    assert storage_gc.free_released().freed == 1
    assert not (root / blob.relpath).exists()


def test_a_sweep_goes_through_every_due_row_in_batches(settings):
    root = Path(settings.WEBPOP_MAIL_DIR)
    blobs = [store.write_blob(f"file {i}".encode()) for i in range(7)]
    _age_all(root)
    storage_gc.release([blob.relpath for blob in blobs] + ["raw/zz/not-ours.eml", ""])
    report = storage_gc.free_released(limit=3)
    assert (report.freed, report.kept) == (7, 1)  # the path outside the layout is never touched
    assert not FileToFree.objects.exists()


def test_a_storage_error_leaves_the_row_for_a_later_sweep(settings, monkeypatch):
    root = Path(settings.WEBPOP_MAIL_DIR)
    blob = store.write_blob(b"unlucky")
    _age(root / blob.relpath)
    storage_gc.release([blob.relpath])

    def broken(relpath, **kwargs):
        raise OSError("storage unavailable")

    monkeypatch.setattr(storage_gc, "free_file", broken)
    assert storage_gc.free_released().later == 1
    monkeypatch.undo()
    assert FileToFree.objects.get().not_before > timezone.now()  # after the lease, as if the worker had died
    FileToFree.objects.update(not_before=timezone.now())
    assert storage_gc.free_released().freed == 1


def test_emptying_the_trash_releases_the_files_and_wakes_a_worker_to_free_them(
    alice, settings, monkeypatch, django_capture_on_commit_callbacks
):
    woken = []
    monkeypatch.setattr(tasks.free_released_files, "delay", lambda: woken.append(True))
    root = Path(settings.WEBPOP_MAIL_DIR)
    message = store_message(
        make_account(alice), build_message("Bin", attachments=[("b.pdf", "application/pdf", PDF)]), "u1"
    )
    files = [message.raw_path, message.attachments.get().stored_path]
    _age_all(root)
    actions.move(alice.id, [message.id], "trash")
    with django_capture_on_commit_callbacks(execute=True):
        assert actions.empty_trash(alice.id) == 1
    assert woken == [True]  # after commit (the rows hold the work should that be lost)
    assert sorted(FileToFree.objects.values_list("relpath", flat=True)) == sorted(files)
    assert storage_gc.free_released().freed == 2
    assert not any((root / relpath).exists() for relpath in files)


def test_the_beat_schedule_sweeps_released_files_often_and_collects_daily(settings):
    from webpop.celery import app

    by_task = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert by_task["mailbox.tasks.free_released_files"] <= dt.timedelta(minutes=10)
    assert by_task["mailbox.tasks.collect_garbage"] == dt.timedelta(days=1)
    assert {"mailbox.tasks.free_released_files", "mailbox.tasks.collect_garbage"} <= set(app.tasks)


def test_the_daily_task_collects_the_store(settings):
    orphan = store.write_blob(b"collected by beat")
    _age(Path(settings.WEBPOP_MAIL_DIR) / orphan.relpath)
    assert tasks.collect_garbage() == {"freed": 1, "bytes_freed": 17, "kept_young": 0}
    assert not (Path(settings.WEBPOP_MAIL_DIR) / orphan.relpath).exists()


# --- Any Django storage ---------------------------------------------------------------


@pytest.fixture
def remote_storage(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        store.STORAGE_ALIAS: {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    yield store.mail_storage()


def test_gc_works_on_a_non_local_storage(alice, remote_storage):
    orphan = store.write_blob(b"remote orphan")
    failure = _quarantine(make_account(alice), b"Subject: remote\r\n\r\nquarantined\r\n")
    assert storage_gc.collect_garbage(grace=dt.timedelta(0)).freed == [(orphan.relpath, 13)]
    assert not remote_storage.exists(orphan.relpath)
    assert remote_storage.exists(failure.raw_path)
