"""Forwarding a message whose HTML shows pictures of its own (cid:): through the web, to the SMTP server.

In rich text the forward shows them where the original did, sent as related parts of its HTML; in plain
text they go as attachments. The original's attachments go along either way.
"""

from __future__ import annotations

import email
import email.policy
import html
import re

import pytest
from django.urls import reverse

from accounts.models import Profile
from outgoing import send
from outgoing.models import OutgoingMessage
from tests.attachment_samples import image
from tests.factories import build_html_message, store_message

pytestmark = pytest.mark.django_db

LOGO = image("PNG", (40, 24))
PHOTO = image("JPEG", (64, 48))
PDF = b"%PDF-1.4 plan \x00\xff" * 20
HIDDEN = re.compile(r'<input type="hidden" name="body_html"(?: value="([^"]*)")?')


def _original(account):
    raw = build_html_message(
        "Stand plan",
        "Our logo and the stand.\n",
        '<p>Our logo: <img src="cid:logo.1@carol.example" alt="Logo"></p>'
        "<p>The stand:</p><img src='CID:Photo.2@carol.example' alt=\"Stand\">",  # any quoting, any case
        inline=[
            ("logo.1@carol.example", "logo.png", "image/png", LOGO),
            ("photo.2@carol.example", "stand.jpg", "image/jpeg", PHOTO),
        ],
        attachments=[("plan.pdf", "application/pdf", PDF)],
        message_id="<stand@carol.example>",
    )
    return store_message(account, raw, "u-stand")


def _forward_and_send(client, account, message, django_capture_on_commit_callbacks) -> email.message.EmailMessage:
    response = client.post(reverse("outgoing:reply", args=[message.id]), {"kind": "forward"})
    outgoing = OutgoingMessage.objects.get(kind="forward")
    assert response.status_code == 302 and response["Location"] == reverse("outgoing:edit", args=[outgoing.id])
    page = client.get(response["Location"]).content.decode()
    [shown] = HIDDEN.findall(page)  # what the editor starts with, posted back as it would be
    body = re.search(r"<textarea[^>]*>\n?(.*?)</textarea>", page, re.S).group(1)
    data = {
        "account": account.id,
        "to": "bob@example.net",
        "cc": "",
        "bcc": "",
        "subject": outgoing.subject,
        "body": html.unescape(body),
        "body_html": html.unescape(shown),
        "format": "rich" if shown else "plain",
        "action": "send",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("outgoing:edit", args=[outgoing.id]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    return outgoing


@pytest.fixture
def sent_mail(smtp_server):
    def read():
        [got] = smtp_server.received
        assert got.rcpt_tos == ["bob@example.net"]
        return email.message_from_bytes(got.data, policy=email.policy.default)

    return read


def test_a_rich_forward_shows_the_originals_pictures_as_related_parts(
    alice, alice_client, smtp_account, send_enqueued, sent_mail, django_capture_on_commit_callbacks
):
    account = smtp_account()
    Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 0})
    _forward_and_send(alice_client, account, _original(account), django_capture_on_commit_callbacks)
    mail = sent_mail()
    html_part = mail.get_body(("html",))
    markup = html_part.get_content()
    related = {part["Content-ID"].strip("<>"): part for part in mail.walk() if part["Content-ID"]}
    sources = re.findall(r'<img[^>]*src="cid:([^"]+)"', markup)
    assert len(sources) == 2 and set(sources) == set(related)
    assert "carol.example" not in " ".join(sources)  # Content-IDs of ours, not the sender's
    pictures = [related[cid] for cid in sources]  # in the order the text shows them
    assert [(p.get_content_type(), p.get_content()) for p in pictures] == [("image/png", LOGO), ("image/jpeg", PHOTO)]
    assert [p.get_filename() for p in pictures] == ["logo.png", "stand.jpg"]
    files = [(a.get_filename(), a.get_content()) for a in mail.iter_attachments()]
    assert ("plan.pdf", PDF) in files and not any(name in {"logo.png", "stand.jpg"} for name, _ in files)


def test_a_plain_forward_carries_the_originals_pictures_as_attachments(
    alice, alice_client, smtp_account, send_enqueued, sent_mail, django_capture_on_commit_callbacks
):
    account = smtp_account()
    Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 0, "compose_format": "plain"})
    _forward_and_send(alice_client, account, _original(account), django_capture_on_commit_callbacks)
    mail = sent_mail()
    assert mail.get_body(("html",)) is None
    assert "Our logo" in mail.get_body(("plain",)).get_content()
    files = sorted((a.get_filename(), a.get_content_type(), a.get_content()) for a in mail.iter_attachments())
    assert files == [
        ("logo.png", "image/png", LOGO),
        ("plan.pdf", "application/pdf", PDF),
        ("stand.jpg", "image/jpeg", PHOTO),
    ]
