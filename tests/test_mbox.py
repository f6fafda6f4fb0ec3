"""mbox export (streamed, mboxrd) and splitting mbox files back into messages."""

import io

import pytest
from django.urls import reverse

from mailbox import mbox
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


def test_export_round_trips_every_message_byte_exact(alice_client, alice):
    account = make_account(alice)
    raws = [
        build_message("one", "From here on\nFrom the start\n>From quoted\n"),
        build_message("two", "plain body", attachments=[("a.bin", "application/octet-stream", bytes(range(256)))]),
    ]
    for i, raw in enumerate(raws):
        store_message(account, raw, f"u{i}")
    response = alice_client.get(reverse("mailbox:export") + "?folder=inbox")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="webpop-inbox-')
    body = b"".join(response.streaming_content)
    assert body.startswith(b"From carol@example.net ")
    assert b"\n>From here on\n" in body and b"\n>>From quoted\n" in body
    assert sorted(mbox.split_mbox(io.BytesIO(body))) == sorted(raws)


def test_export_of_a_search_only_has_matches(alice_client, alice):
    account = make_account(alice)
    store_message(account, build_message("invoice 42", "pay"), "1")
    store_message(account, build_message("lunch", "eat"), "2")
    body = b"".join(alice_client.get(reverse("mailbox:export") + "?q=subject:invoice").streaming_content)
    assert [m.split(b"Subject: ")[1].split(b"\r\n")[0] for m in mbox.split_mbox(io.BytesIO(body))] == [b"invoice 42"]


def test_export_is_only_ever_your_own_mail(bob_client, alice):
    store_message(make_account(alice), build_message("alice only"), "1")
    assert b"".join(bob_client.get(reverse("mailbox:export") + "?folder=inbox").streaming_content) == b""


def test_export_needs_a_folder_or_query(alice_client):
    assert alice_client.get(reverse("mailbox:export")).status_code == 404
    assert alice_client.get(reverse("mailbox:export") + "?folder=nope").status_code == 404


def test_split_mbox_handles_mboxo_and_text_before_the_first_message():
    data = (
        b"junk\nFrom a@b Thu Nov 26 00:00:00 2026\nSubject: 1\n\nbody\n\n"
        b"From c@d Thu Nov 26 00:00:00 2026\nSubject: 2\n\nx"
    )
    assert list(mbox.split_mbox(io.BytesIO(data))) == [b"Subject: 1\r\n\r\nbody\r\n", b"Subject: 2\r\n\r\nx\r\n"]
