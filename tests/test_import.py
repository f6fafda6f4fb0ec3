"""Importing .eml and .mbox files: byte-exact storage, no duplicates, never DELE'd, limits, per user."""

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from mailbox import folders, importer, mbox, store, sync
from mailbox.models import Message
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


def lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_an_eml_is_stored_with_crlf_like_fetched_mail_and_never_deleted_from_a_server(alice_client, alice):
    account = make_account(alice, policy="delete")
    raw = build_message("Saved from Thunderbird", "Line one\nLine two\n")
    response = alice_client.post(
        reverse("mailbox:import"),
        {"account": account.id, "folder": "archive", "files": [upload("saved.eml", lf(raw))]},
        follow=True,
    )
    assert "Imported 1, skipped 0 duplicates." in response.content.decode()
    message = Message.objects.get()
    sha = hashlib.sha256(raw).hexdigest()
    assert (message.uidl, message.sha256, message.server_state) == (f"import:{sha}", sha, "gone")
    assert (message.folder, message.subject, message.account_id) == ("archive", "Saved from Thunderbird", account.id)
    assert message.thread_id is not None
    assert store.path_of(message.raw_path).read_bytes() == raw
    # It was never on the server: no policy may DELE it, even if a server listed the same UIDL.
    assert sync._messages_to_delete(account, account.parsed_policy, {message.uidl: 1}) == []


def test_an_mbox_round_trips_from_export_into_a_user_folder(alice):
    source, target = make_account(alice), make_account(alice, username="archive")
    raws = [
        build_message("one", "From here on\n>From quoted\n"),
        build_message("two", "x", attachments=[("a.bin", "application/octet-stream", bytes(range(256)))]),
        build_message("three", "y"),
    ]
    for i, raw in enumerate(raws):
        store_message(source, raw, f"s{i}")
    exported = b"".join(mbox.export(Message.objects.filter(account=source).order_by("id")))
    folder = folders.create(alice.id, "Old mail")
    report = importer.import_files(target, folder.slug, [("old.mbox", io.BytesIO(exported))])
    assert (report.imported, report.duplicates, report.failed) == (3, 0, [])
    imported = Message.objects.filter(account=target)
    assert {m.folder for m in imported} == {folder.slug}
    assert sorted(store.path_of(m.raw_path).read_bytes() for m in imported) == sorted(raws)
    assert imported.get(subject="two").attachments.get().filename == "a.bin"


def test_importing_twice_does_not_duplicate(alice):
    account = make_account(alice)
    raw = build_message("Once")
    mbox_file = b"From a@b Thu Nov 26 09:00:00 2026\n" + lf(raw) + b"\n" + b"From a@b Thu Nov 26 09:00:00 2026\n" + raw
    first = importer.import_files(account, "inbox", [("a.mbox", io.BytesIO(mbox_file))])
    assert (first.imported, first.duplicates) == (1, 1)  # the same message twice in one file
    again = importer.import_files(account, "inbox", [("a.eml", io.BytesIO(raw))])
    assert (again.imported, again.duplicates) == (0, 1)
    assert Message.objects.count() == 1
    assert again.summary() == "Imported 0, skipped 1 duplicate."


def test_bad_files_fail_alone_with_a_clear_summary(alice_client, alice):
    account = make_account(alice, max_message_bytes=2000)
    good = build_message("Fine")
    huge = build_message("Huge", "x" * 5000)
    report = importer.import_files(
        account,
        "inbox",
        [("empty.eml", io.BytesIO(b"")), ("huge.eml", io.BytesIO(huge)), ("good.eml", io.BytesIO(good)),
         ("notes.mbox", io.BytesIO(b"no separator here\n"))],
    )  # fmt: skip
    assert report.imported == 1
    assert len(report.failed) == 3
    summary = report.summary()
    assert summary.startswith("Imported 1, skipped 0 duplicates, 3 failed: empty.eml: empty; huge.eml: larger than")
    assert "notes.mbox: no messages found" in summary
    assert list(store.root().joinpath("tmp").iterdir()) == []  # no temp files left behind


def test_uploads_over_the_limit_are_refused_before_anything_is_stored(alice_client, alice, settings):
    settings.WEBPOP_IMPORT_MAX_BYTES = 4096
    account = make_account(alice)
    big = build_message("Big", "y" * 200_000)
    response = alice_client.post(
        reverse("mailbox:import"), {"account": account.id, "folder": "inbox", "files": [upload("big.eml", big)]}
    )
    assert response.status_code == 413
    assert "larger than the limit" in response.content.decode()
    assert not Message.objects.exists()


def test_the_upload_handler_stops_bodies_that_lie_about_their_length(alice, settings):
    from django.test import RequestFactory

    from mailbox import views_import

    settings.WEBPOP_IMPORT_MAX_BYTES = 4096
    account = make_account(alice)
    request = RequestFactory().post(
        reverse("mailbox:import"),
        {"account": account.id, "folder": "inbox", "files": [upload("big.eml", build_message("B", "z" * 50_000))]},
    )
    request.META["CONTENT_LENGTH"] = "100"  # claims small: only the streaming handler can catch it
    request.user = alice
    request._dont_enforce_csrf_checks = True
    request.session = {}
    response = views_import.import_mail(request)
    assert response.status_code == 413
    # The middleware must not read the body before the view installs the handler.
    assert views_import.import_mail.csrf_exempt is True
    assert not Message.objects.exists()


def test_import_page_offers_only_the_users_accounts_and_folders(alice_client, alice, bob):
    make_account(alice, label="Alice home")
    make_account(bob, label="Bob home")
    folders.create(bob.id, "Bobs folder")
    folders.create(alice.id, "Alices folder")
    page = alice_client.get(reverse("mailbox:import")).content.decode()
    assert "Alice home" in page and "Alices folder" in page
    assert "Bob home" not in page and "Bobs folder" not in page


def test_nobody_imports_into_another_users_account_or_folder(alice, bob, bob_client):
    alices_account = make_account(alice)
    bobs_account = make_account(bob)
    alices_folder = folders.create(alice.id, "Private")
    raw = build_message("Sneaky")
    for data in (
        {"account": alices_account.id, "folder": "inbox"},
        {"account": bobs_account.id, "folder": alices_folder.slug},
    ):
        response = bob_client.post(reverse("mailbox:import"), {**data, "files": [upload("x.eml", raw)]})
        assert response.status_code == 400
    assert not Message.objects.exists()


def test_import_needs_login_post_and_csrf(alice):
    account = make_account(alice)
    anonymous = Client()
    assert anonymous.get(reverse("mailbox:import")).status_code == 302
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(
        reverse("mailbox:import"),
        {"account": account.id, "folder": "inbox", "files": [upload("x.eml", build_message("x"))]},
    )
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_an_imported_copy_of_synced_mail_is_a_separate_message(alice):
    # The synced copy keeps its server UIDL (so policies still apply to it); the import stands alone.
    account = make_account(alice)
    raw = build_message("Both")
    store_message(account, raw, "server-uidl")
    report = importer.import_files(account, "inbox", [("both.eml", io.BytesIO(raw))])
    assert report.imported == 1
    assert sorted(Message.objects.values_list("server_state", flat=True)) == ["gone", "on_server"]
