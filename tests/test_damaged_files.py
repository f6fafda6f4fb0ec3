"""A damaged stored file is never served as if it were good: the page says so, downloads refuse."""

import pytest
from django.urls import reverse
from django.utils import translation

from mailbox import damage, store
from mailbox.models import Attachment, DamagedFile
from tests.factories import build_html_message, build_message, make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

DAMAGED = "The original of this message is damaged"
DAMAGED_DE = "Das Original dieser Nachricht ist beschädigt"


@pytest.fixture
def account(alice):
    return make_account(alice)


def stored_with_attachment(account):
    raw = build_message(
        "Quarterly", "The secret body text.\n", attachments=[("q.txt", "text/plain", b"attached words " * 50)]
    )
    message = store_message(account, raw, "u1")
    return message, Attachment.objects.get(message=message)


def test_a_corrupt_original_shows_the_notice_not_the_bytes(alice_client, account):
    message, _attachment = stored_with_attachment(account)
    path = store.path_of(message.raw_path)
    path.write_bytes(path.read_bytes().replace(b"secret", b"SECRET"))
    page = alice_client.get(reverse("mailbox:message", args=[message.id]))
    text = page.content.decode()
    assert page.status_code == 200
    assert DAMAGED in text and "SECRET" not in text
    assert DamagedFile.objects.get().kind == "corrupt"  # found on the way, marked

    for name in ("raw", "source"):
        response = alice_client.get(reverse(f"mailbox:{name}", args=[message.id]))
        assert response.status_code == 410
        assert b"SECRET" not in response.content and "This file is damaged" in response.content.decode()


def test_a_cached_body_is_not_shown_once_the_original_is_marked_damaged(alice_client, account):
    message = store_message(account, build_html_message("News", "Cached words", "<p>Cached words</p>"), "u2")
    alice_client.get(reverse("mailbox:message", args=[message.id]))  # sanitized and cached now
    store.path_of(message.raw_path).unlink()
    damage.mark(message.raw_path, message.sha256, "missing")  # as verifystore does
    page = alice_client.get(reverse("mailbox:message", args=[message.id]))
    assert DAMAGED in page.content.decode()
    assert alice_client.get(reverse("mailbox:message_body", args=[message.id])).status_code == 404


def test_a_missing_original_found_at_view_time_shows_the_notice_in_german(alice_client, account):
    message, _attachment = stored_with_attachment(account)
    store.path_of(message.raw_path).unlink()
    with translation.override("de"):
        page = alice_client.get(reverse("mailbox:message", args=[message.id]), HTTP_ACCEPT_LANGUAGE="de")
    assert page.status_code == 200
    assert DAMAGED_DE in page.content.decode()
    assert DamagedFile.objects.get().kind == "missing"


def test_a_damaged_attachment_is_refused_and_named_on_the_page(alice_client, account):
    message, attachment = stored_with_attachment(account)
    store.path_of(attachment.stored_path).write_bytes(b"attached w0rds")
    response = alice_client.get(reverse("mailbox:attachment", args=[attachment.id]))
    assert response.status_code == 410 and b"w0rds" not in response.content
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert "An attachment of this message is damaged" in page
    assert "The secret body text." in page  # the message itself is whole


def test_a_restored_file_is_served_again(alice_client, account):
    message, _attachment = stored_with_attachment(account)
    path = store.path_of(message.raw_path)
    data = path.read_bytes()
    path.unlink()
    assert alice_client.get(reverse("mailbox:raw", args=[message.id])).status_code == 410
    path.write_bytes(data)  # restored from a backup
    response = alice_client.get(reverse("mailbox:raw", args=[message.id]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == data
    assert not DamagedFile.objects.exists()
    assert DAMAGED not in alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()


def test_storing_the_same_content_again_replaces_a_file_cut_short(alice, account):
    raw = build_message("Again", "The same bytes, fetched twice.\n")
    message = store_message(account, raw, "u1")
    path = store.path_of(message.raw_path)
    path.write_bytes(raw[:-10])
    store_message(make_account(alice, username="second@pop.example.net"), raw, "u1")
    assert path.read_bytes() == raw
