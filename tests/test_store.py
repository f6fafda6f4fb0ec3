"""Storage: byte-exact, content-addressed, atomic; attachments once per hash; freeing what nothing references."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from django.urls import reverse

from mailbox import mime, store
from mailbox.models import Attachment, Message
from tests.factories import build_message, make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 64


def _age(path: Path, seconds: float = 3600 * 24) -> None:
    """Make a stored file look old, as if written long ago."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_raw_message_is_stored_byte_exact_under_its_sha256_in_sharded_folders(alice, settings):
    raw = build_message("Hello", "Body\r\n.dot line\r\n")
    message = store_message(make_account(alice), raw, "u1")
    sha = hashlib.sha256(raw).hexdigest()
    assert message.raw_path == f"raw/{sha[:2]}/{sha}.eml"
    assert (Path(settings.WEBPOP_MAIL_DIR) / message.raw_path).read_bytes() == raw
    assert (message.sha256, message.size) == (sha, len(raw))
    assert _files(Path(settings.WEBPOP_MAIL_DIR) / "tmp") == []  # the temp file was renamed, not copied


def test_commit_raw_refuses_bytes_that_do_not_match_what_the_server_sent(settings):
    with store.temp_file() as fh:
        fh.write(b"Subject: x\r\n\r\nbody\r\n")
    with pytest.raises(store.VerificationError):
        store.commit_raw(Path(fh.name), expected_size=5, expected_sha256="0" * 64)
    assert not (Path(settings.WEBPOP_MAIL_DIR) / "raw").exists()


def test_the_same_message_in_two_accounts_is_one_file_and_two_rows(alice, settings):
    raw = build_message("Shared")
    first = store_message(make_account(alice, username="a1"), raw, "u1")
    second = store_message(make_account(alice, username="a2"), raw, "u1")
    assert first.raw_path == second.raw_path
    assert len(_files(Path(settings.WEBPOP_MAIL_DIR) / "raw")) == 1


def test_attachment_bytes_are_stored_once_per_content_hash(alice, settings):
    account = make_account(alice)
    one = store_message(account, build_message("One", attachments=[("a.pdf", "application/pdf", PDF)]), "u1")
    two = store_message(account, build_message("Two", attachments=[("copy.pdf", "application/pdf", PDF)]), "u2")
    a, b = one.attachments.get(), two.attachments.get()
    assert a.stored_path == b.stored_path == f"att/{a.sha256[:2]}/{a.sha256}"
    assert (a.filename, b.filename) == ("a.pdf", "copy.pdf")
    assert _files(Path(settings.WEBPOP_MAIL_DIR) / "att") == [a.stored_path.removeprefix("att/")]
    assert store.open_file(a.stored_path).read() == PDF


def test_rows_carry_search_text_notice_and_inline_flags(alice):
    html = '<p>See <img src="cid:logo@x"> the <b>quarterly</b> numbers</p>'
    raw = (
        b"From: a@example.net\r\nSubject: Related\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
        b"--r\r\nContent-Type: text/html\r\n\r\n" + html.encode() + b"\r\n"
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n\r\nPNGDATA\r\n--r--\r\n"
    )
    message = store_message(make_account(alice), raw, "u1")
    assert "quarterly numbers" in message.search_text
    assert message.snippet == "See the quarterly numbers"
    assert message.parse_notice == ""
    image = message.attachments.get()
    assert (image.inline, image.content_id, image.content_type) == (True, "logo@x", "image/png")
    assert not message.has_attachments  # an inline image is part of the body, not a file to download


def test_a_message_beyond_the_limits_is_stored_whole_with_a_notice(alice, settings):
    parts = b"".join(
        b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nx\r\n" for _ in range(1200)
    )
    raw = (
        b"From: a@example.net\r\nSubject: Many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + parts
        + b"--b--\r\n"
    )
    message = store_message(make_account(alice), raw, "u1")
    assert "more than 1,000 parts" in message.parse_notice
    assert store.path_of(message.raw_path).read_bytes() == raw


def test_save_message_returns_none_when_the_uidl_is_already_stored(alice):
    account = make_account(alice)
    raw = build_message("Once")
    store_message(account, raw, "u1")
    with store.temp_file() as fh:
        fh.write(raw)
    stored = store.commit_raw(Path(fh.name), expected_size=len(raw), expected_sha256=hashlib.sha256(raw).hexdigest())
    assert store.save_message(account, "u1", stored, mime.parse_bytes(raw)) is None
    assert Message.objects.filter(account=account).count() == 1


def test_paths_outside_the_store_layout_are_refused():
    for bad in ("../../etc/passwd", "raw/../../x", "/etc/passwd", "raw/ab/cd/notahash.eml", ""):
        with pytest.raises(ValueError):
            store.open_file(bad)


def test_the_local_storage_follows_the_mail_dir_setting(settings, tmp_path):
    settings.WEBPOP_MAIL_DIR = tmp_path / "elsewhere"
    blob = store.write_blob(b"moved")
    assert (tmp_path / "elsewhere" / blob.relpath).read_bytes() == b"moved"


# --- Any Django storage (S3-compatible in production) ---------------------------------


@pytest.fixture
def remote_storage(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        store.STORAGE_ALIAS: {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    yield store.mail_storage()


def test_messages_and_attachments_go_through_a_configured_non_local_storage(alice, remote_storage, settings):
    raw = build_message("Remote", attachments=[("r.pdf", "application/pdf", PDF)])
    message = store_message(make_account(alice), raw, "u1")
    assert remote_storage.open(message.raw_path).read() == raw
    assert store.open_file(message.attachments.get().stored_path).read() == PDF
    assert not (Path(settings.WEBPOP_MAIL_DIR) / "raw").exists()
    with pytest.raises(ValueError):
        store.path_of(message.raw_path)
    # The same content again is not written twice, and the spool is left empty.
    store_message(make_account(alice, username="other"), raw, "u1")
    assert len(remote_storage.listdir(message.raw_path.rsplit("/", 1)[0])[1]) == 1
    assert list((Path(settings.WEBPOP_MAIL_DIR) / "tmp").iterdir()) == []


def test_views_serve_stored_files_from_the_configured_storage(alice, alice_client, remote_storage):
    raw = build_message("Via storage", "Readable body", attachments=[("v.pdf", "application/pdf", PDF)])
    message = store_message(make_account(alice), raw, "u1")
    page = alice_client.get(reverse("mailbox:message", args=[message.id]))
    assert page.status_code == 200 and b"Readable body" in page.content
    assert b"".join(alice_client.get(reverse("mailbox:raw", args=[message.id])).streaming_content) == raw
    download = alice_client.get(reverse("mailbox:attachment", args=[message.attachments.get().id]))
    assert b"".join(download.streaming_content) == PDF


def test_a_batch_reads_back_exactly_as_one_message_stored_alone(alice):
    """save_messages (COPY on PostgreSQL) and save_message (an INSERT) store the same values."""
    account = make_account(alice)
    raw = build_message(
        "Quarterly report", "Numbers attached.", attachments=[("report.pdf", "application/pdf", b"%PDF-1.4 data")]
    )
    parsed = mime.parse_bytes(raw)

    def stored_raw():
        with store.temp_file() as fh:
            fh.write(raw)
        sha = hashlib.sha256(raw).hexdigest()
        return store.commit_raw(Path(fh.name), expected_size=len(raw), expected_sha256=sha)

    (batched,) = store.save_messages(account, [("u-batch", stored_raw(), parsed)])
    alone = store.save_message(account, "u-alone", stored_raw(), parsed)
    skip = {"id", "uidl", "thread_id", "received_at", "search_document"}
    fields = [f.attname for f in Message._meta.concrete_fields if f.attname not in skip]
    read = Message.objects.values(*fields)
    assert read.get(id=batched.id) == read.get(id=alone.id)
    attachment_fields = [f.attname for f in Attachment._meta.concrete_fields if f.attname not in {"id", "message_id"}]
    rows = Attachment.objects.values(*attachment_fields)
    assert list(rows.filter(message_id=batched.id)) == list(rows.filter(message_id=alone.id))


def _raised_through_django(driver_error: Exception) -> Exception:
    """``driver_error`` as Django raises it: its own OperationalError, raised from the driver's."""
    import django.db

    try:
        try:
            raise driver_error
        except Exception as exc:
            raise django.db.OperationalError(*exc.args) from exc
    except django.db.OperationalError as wrapped:
        return wrapped


def test_the_database_disk_full_counts_as_disk_full_like_the_mail_store():
    import sqlite3

    import psycopg

    # SQLite's own "database or disk is full", for real: a database allowed two pages.
    db = sqlite3.connect(":memory:")
    db.execute("PRAGMA max_page_count = 2")
    with pytest.raises(sqlite3.OperationalError) as full:
        db.execute("CREATE TABLE t (x BLOB)")
        db.execute("INSERT INTO t VALUES (zeroblob(100000))")
    db.close()
    assert store.is_disk_full(_raised_through_django(full.value))
    # PostgreSQL's disk_full (SQLSTATE 53100), as psycopg raises it when the server cannot extend a file.
    assert store.is_disk_full(_raised_through_django(psycopg.errors.DiskFull("could not extend file")))
    assert store.is_disk_full(OSError(28, "No space left on device"))
    for other in (psycopg.errors.AdminShutdown("terminating connection"), sqlite3.OperationalError("locked")):
        assert not store.is_disk_full(_raised_through_django(other))
