"""Readers that pass a stored file on (reply, forward, mbox export, the spam scan) never pass a damaged one as good.

Each test flips one byte of a stored file, as a failing disk or a bad restore would.
"""

from __future__ import annotations

import email
import email.policy
import io

import pytest
from django.urls import reverse
from django.utils import translation

from mailbox import mbox, store
from mailbox.models import Attachment, DamagedFile, Folder, Message
from outgoing.models import OutgoingMessage
from spam import actions as spam_actions
from spam import learning, scanning
from spam.models import PendingLearn, PendingScan
from tests.factories import build_message, make_account, store_message
from tests.rspamd import GTUBE

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def flip_a_byte(relpath: str, needle: bytes) -> None:
    """One byte of the stored file changed where ``needle`` starts (its first byte upper-cased)."""
    path = store.path_of(relpath)
    data = path.read_bytes()
    at = data.index(needle)
    path.write_bytes(data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :])


@pytest.fixture
def account(alice):
    return make_account(alice)


def with_attachment(account, uidl: str = "u1") -> Message:
    raw = build_message("Plans", "the secret body\n", attachments=[("plan.txt", "text/plain", b"the plan " * 40)])
    return store_message(account, raw, uidl)


def shown_errors(client, response) -> str:
    assert response.status_code == 302
    return client.get(response["Location"]).content.decode()


@pytest.mark.parametrize("kind", ["reply", "forward"])
def test_a_damaged_original_is_neither_quoted_nor_forwarded(alice_client, account, kind):
    message = with_attachment(account)
    flip_a_byte(message.raw_path, b"secret")
    response = alice_client.post(reverse("outgoing:reply", args=[message.id]), {"kind": kind})
    assert response["Location"] == reverse("mailbox:message", args=[message.id])
    page = shown_errors(alice_client, response)
    assert "The original of this message is damaged" in page and "cannot be quoted or forwarded" in page
    assert not OutgoingMessage.objects.exists()
    assert DamagedFile.objects.get().relpath == message.raw_path


def test_a_damaged_attachment_is_not_forwarded_and_is_named(alice_client, account):
    message = with_attachment(account)
    attachment = Attachment.objects.get(message=message)
    flip_a_byte(attachment.stored_path, b"plan")
    response = alice_client.post(reverse("outgoing:reply", args=[message.id]), {"kind": "forward"})
    page = shown_errors(alice_client, response)
    assert "The attachment “plan.txt” of this message is damaged" in page
    assert not OutgoingMessage.objects.exists()
    assert DamagedFile.objects.get().relpath == attachment.stored_path
    # A reply quotes only the (whole) message: it still works.
    response = alice_client.post(reverse("outgoing:reply", args=[message.id]), {"kind": "reply"})
    assert response["Location"].startswith("/") and OutgoingMessage.objects.get().kind == "reply"
    assert "the secret body" in OutgoingMessage.objects.get().body


def test_the_notice_for_a_damaged_original_is_german_too(alice_client, account):
    message = with_attachment(account)
    flip_a_byte(message.raw_path, b"secret")
    with translation.override("de"):
        response = alice_client.post(
            reverse("outgoing:reply", args=[message.id]), {"kind": "reply"}, HTTP_ACCEPT_LANGUAGE="de"
        )
        page = alice_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "daher kann sie weder zitiert noch weitergeleitet werden" in page


def test_an_export_leaves_a_damaged_message_out_and_says_so_last(alice_client, account):
    whole = [build_message(f"whole {n}", f"body {n}\n") for n in range(2)]
    store_message(account, whole[0], "a")
    broken = store_message(account, build_message("Broken one", "the secret body\n"), "b")
    store_message(account, whole[1], "c")
    flip_a_byte(broken.raw_path, b"secret")

    body = b"".join(alice_client.get(reverse("mailbox:export") + "?folder=inbox").streaming_content)
    *exported, note = mbox.split_mbox(io.BytesIO(body))
    assert exported == whole  # byte for byte, the damaged one left out
    assert b"sEcret" not in body
    assert b"Subject: Export incomplete: 1 message left out, its original is damaged" in note
    assert b"Broken one" in note and b"verifystore --repair" in note
    assert DamagedFile.objects.get().relpath == broken.raw_path


def test_the_export_note_is_in_the_users_language(alice_client, account):
    broken = store_message(account, build_message("Kaputt", "the secret body\n"), "b")
    store.path_of(broken.raw_path).unlink()
    response = alice_client.get(reverse("mailbox:export") + "?folder=inbox", HTTP_ACCEPT_LANGUAGE="de")
    [note] = mbox.split_mbox(io.BytesIO(b"".join(response.streaming_content)))
    parsed = email.message_from_bytes(note, policy=email.policy.default)
    assert parsed["Subject"] == "Export unvollständig: 1 Nachricht ausgelassen, ihr Original ist beschädigt"
    assert "daher lässt dieser Export sie aus" in parsed.get_content() and "Kaputt" in parsed.get_content()


def test_an_export_of_whole_messages_has_no_note(alice_client, account):
    raw = build_message("fine", "body\n")
    store_message(account, raw, "a")
    body = b"".join(alice_client.get(reverse("mailbox:export") + "?folder=inbox").streaming_content)
    assert list(mbox.split_mbox(io.BytesIO(body))) == [raw]


# --- The spam scan ------------------------------------------------------------------------------


def test_the_providers_verdict_is_not_read_from_a_damaged_original(alice):
    account = make_account(alice)
    spam_actions.set_provider_trust(alice.id, account.id, trust=True, authserv_id="")
    account.refresh_from_db()
    raw = b"X-Spam-Flag: YES\r\nFrom: Shop <news@shop.example>\r\nSubject: Offer\r\n\r\nBuy now.\r\n"
    message = store_message(account, raw, "p1")
    flip_a_byte(message.raw_path, b"Buy")
    report = scanning.scan_due()
    assert (report.judged, report.spam, report.failed) == (0, 0, 1)
    assert Message.objects.get(id=message.id).folder == Folder.INBOX  # unjudged, tried again later
    assert PendingScan.objects.get().error == f"{message.raw_path} is corrupt"
    assert DamagedFile.objects.get().kind == "corrupt"


def test_rspamd_is_never_asked_about_a_damaged_original(rspamd, alice):
    account = make_account(alice)
    damaged = store_message(account, build_message("GTUBE", f"This is the GTUBE.\n\n{GTUBE}\n"), "g1")
    whole = store_message(account, build_message("GTUBE too", f"Again the GTUBE.\n\n{GTUBE}\n"), "g2")
    flip_a_byte(damaged.raw_path, b"This is")
    report = scanning.scan_due()
    assert (report.judged, report.spam, report.failed, report.counts.rspamd_scans) == (1, 1, 1, 1)
    folders = dict(Message.objects.values_list("id", "folder"))
    assert folders == {damaged.id: Folder.INBOX, whole.id: Folder.SPAM}
    assert PendingScan.objects.get().message_id == damaged.id
    assert DamagedFile.objects.get().relpath == damaged.raw_path
    # Restored (or repaired): the next try judges it.
    store.path_of(damaged.raw_path).write_bytes(build_message("GTUBE", f"This is the GTUBE.\n\n{GTUBE}\n"))
    PendingScan.objects.update(not_before=PendingScan.objects.get().created_at)
    assert scanning.scan_due().spam == 1
    assert Message.objects.get(id=damaged.id).folder == Folder.SPAM


def test_rspamd_never_learns_from_a_damaged_original(rspamd, alice):
    account = make_account(alice)
    message = store_message(account, build_message("Offer", "cheap watches\n"), "l1")
    PendingScan.objects.all().delete()
    PendingLearn.objects.create(message=message, owner=alice, spam=True)
    flip_a_byte(message.raw_path, b"cheap")
    report = learning.learn_due()
    assert report.failed == 1
    assert PendingLearn.objects.get().error == f"{message.raw_path} is corrupt"
