"""Rich text through the web and the sending path: drafts keep clean HTML and its text version, pictures belong to
their draft (and only their owner sees them), what goes out, the format switch, the preference, rich signatures."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Profile
from outgoing import actions as outgoing_actions
from outgoing import identities, rich, send
from outgoing.models import Identity, OutgoingAttachment, OutgoingMessage, SmtpSettings
from tests.attachment_samples import image
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

PNG = image("PNG", (30, 20))


def compose_data(account, **overrides) -> dict:
    data = {"account": account.id, "to": "bob@example.net", "cc": "", "bcc": "", "subject": "Hi", "body": ""}
    data.update(overrides)
    return data


def sending_account(owner, signature="Alice Main"):
    account = make_account(owner, username="alice@example.org")
    outgoing_actions.save(
        account,
        {"host": "smtp.example.org", "port": 587, "security": "starttls", "auth": "same",
         "from_email": "alice@example.org", "from_name": "Alice", "signature": signature},
    )  # fmt: skip
    return account


def test_a_rich_draft_keeps_clean_html_and_its_text_version(alice, alice_client):
    account = sending_account(alice)
    posted = (
        '<div onclick="x()">Hi <strong>Bob</strong></div><ul><li>one</li></ul><script>alert(1)</script>'
        '<img src="https://tracker.example/p.png"><a href="https://example.com/">site</a>'
    )
    data = compose_data(account, format="rich", body_html=posted, body="ignored: the editor's text counts")
    response = alice_client.post(reverse("outgoing:compose"), {**data, "action": "save"})
    assert response.status_code == 302
    draft = OutgoingMessage.objects.get(owner=alice)
    assert draft.body_html == (
        "<div>Hi <strong>Bob</strong></div><ul><li>one</li></ul>"
        '<a href="https://example.com/" target="_blank" rel="noopener noreferrer">site</a>'
    )
    assert draft.body == "Hi *Bob*\n\n- one\n\nsite <https://example.com/>\n"
    # The editor gets it back; the page says "plain" until its script starts the editor.
    page = alice_client.get(reverse("outgoing:edit", args=[draft.id])).content.decode()
    assert 'data-rich-start="rich"' in page and 'name="format" value="plain"' not in page
    assert "&lt;strong&gt;Bob&lt;/strong&gt;" in page  # the hidden field's value, escaped


def test_without_the_editor_the_text_field_counts_and_the_draft_becomes_plain(alice, alice_client):
    account = sending_account(alice)
    data = compose_data(account, format="rich", body_html="<div><strong>old</strong></div>")
    alice_client.post(reverse("outgoing:compose"), {**data, "action": "save"})
    draft = OutgoingMessage.objects.get(owner=alice)
    data = compose_data(account, body_html="<div><strong>old</strong></div>", body="Typed without script")
    alice_client.post(reverse("outgoing:edit", args=[draft.id]), {**data, "action": "save"})
    draft.refresh_from_db()
    assert (draft.body_html, draft.body) == ("", "Typed without script")
    assert 'data-rich-start="plain"' in alice_client.get(reverse("outgoing:edit", args=[draft.id])).content.decode()


def test_a_new_message_starts_as_the_preference_says_with_the_signature_in_both_forms(alice, alice_client):
    sending_account(alice, signature="Alice\nACME")
    page = alice_client.get(reverse("outgoing:compose")).content.decode()
    assert 'data-rich-start="rich"' in page
    assert "&lt;div&gt;--\u00a0&lt;/div&gt;&lt;div&gt;Alice&lt;br&gt;ACME&lt;/div&gt;" in page
    assert "\n\n-- \nAlice\nACME\n</textarea>" in page
    Profile.objects.update_or_create(user=alice, defaults={"compose_format": "plain"})
    assert 'data-rich-start="plain"' in alice_client.get(reverse("outgoing:compose")).content.decode()


def test_the_preference_is_saved_and_kept_when_not_sent(alice, alice_client):
    url = reverse("accounts:preferences")
    assert alice_client.post(url, {"time_zone": "", "compose_format": "plain"}).status_code == 302
    assert Profile.objects.get(user=alice).compose_format == "plain"
    alice_client.post(url, {"time_zone": ""})
    assert Profile.objects.get(user=alice).compose_format == "plain"
    page = alice_client.get(url).content.decode()
    assert 'value="plain"' in page and "Rich text" in page


def test_pictures_go_into_a_draft_are_shown_to_its_owner_only_and_sent_while_the_text_shows_them(
    alice, bob, alice_client, bob_client
):
    account = sending_account(alice)
    draft = send.save_draft(alice, None, account=account, to="bob@example.net", subject="Pics")
    upload = reverse("outgoing:image_upload", args=[draft.id])
    answer = alice_client.post(upload, {"file": SimpleUploadedFile("a.png", PNG, content_type="image/png")}).json()
    picture = OutgoingAttachment.objects.get(id=answer["id"])
    assert answer["url"] == reverse("outgoing:image", args=[draft.id, picture.id])
    assert picture.content_type == "image/png" and picture.content_id.endswith("@example.org")
    shown = alice_client.get(answer["url"])
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png" and shown.content == PNG
    assert "sandbox" in shown["Content-Security-Policy"]
    assert bob_client.get(answer["url"]).status_code == 404
    bob_upload = bob_client.post(upload, {"file": SimpleUploadedFile("b.png", PNG, content_type="image/png")})
    assert bob_upload.status_code == 404
    # Not a picture we take, whatever the browser says it is: refused.
    for name, data in (("x.svg", b"<svg onload='alert(1)'/>"), ("x.png", b"not a picture")):
        refused = alice_client.post(upload, {"file": SimpleUploadedFile(name, data, content_type="image/png")})
        assert refused.status_code == 400 and "PNG" in refused.json()["error"]
    # Files attached (not in the text) are not pictures to show.
    send.save_draft(alice, draft, account=account, to="bob@example.net", add=[("n.txt", "text/plain", b"n")])
    note = OutgoingAttachment.objects.get(message=draft, content_id="")
    assert alice_client.get(reverse("outgoing:image", args=[draft.id, note.id])).status_code == 404

    # In the text: stored as its cid, sent in multipart/related; a second picture taken out again is not sent.
    second = outgoing_actions.add_image(alice, draft.id, "b.gif", image("GIF", (8, 8)))
    html = f'<div>Look</div><div><figure><img src="{answer["url"]}" width="30" height="20"></figure></div>'
    data = compose_data(account, format="rich", body_html=html, subject="Pics")
    alice_client.post(reverse("outgoing:edit", args=[draft.id]), {**data, "action": "save"})
    draft.refresh_from_db()
    assert f'src="cid:{picture.content_id}"' in draft.body_html and "/compose/" not in draft.body_html
    assert draft.body == "Look\n[a.png]\n"
    editor = alice_client.get(reverse("outgoing:edit", args=[draft.id])).content.decode()
    assert f"src=&quot;{answer['url']}&quot;" in editor  # the editor shows it from our URL
    queued = outgoing_actions.queue(alice, draft.id, delay=0)
    mail = email.message_from_bytes(bytes(queued.raw), policy=email.policy.default)
    types = [part.get_content_type() for part in mail.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "text/plain",
    ]
    assert second.content_id.encode() not in bytes(queued.raw)


def test_a_picture_cannot_go_into_a_message_being_sent(alice, alice_client):
    account = sending_account(alice)
    draft = send.save_draft(alice, None, account=account, to="bob@example.net", body="x")
    outgoing_actions.queue(alice, draft.id, delay=60)
    with pytest.raises(rich.ImageRefused):
        outgoing_actions.add_image(alice, draft.id, "a.png", PNG)


def test_switching_formats_converts_on_the_server(alice, alice_client, client):
    url = reverse("outgoing:convert")
    text = alice_client.post(url, {"html": "<div>Buy:</div><ol><li>milk</li></ol><blockquote>q</blockquote>"})
    assert text.json() == {"text": "Buy:\n\n1. milk\n\n> q\n"}
    html = alice_client.post(url, {"text": "a <b>\n> q"}).json()["html"]
    assert html == "<div>a &lt;b&gt;</div><blockquote><div>q</div></blockquote>"
    assert client.post(url, {"text": "x"}).status_code == 302  # signed in only
    assert alice_client.get(url).status_code == 405


def test_replies_and_forwards_start_in_rich_text_quoting_in_the_users_language(alice, alice_client):
    account = sending_account(alice)
    raw = build_message(
        "Hallo", "Wie geht's?", sender="Carol <carol@example.net>", date="Thu, 26 Nov 2026 23:30:00 +0000"
    )
    message = store_message(account, raw, "u1")
    alice_client.post(reverse("accounts:preferences"), {"time_zone": "Europe/Berlin", "conversations": "on"})
    alice_client.cookies["django_language"] = "de"
    alice_client.post(reverse("outgoing:reply", args=[message.id]), {"kind": "reply"})
    reply = OutgoingMessage.objects.get(owner=alice, kind="reply")
    assert (
        "<div>Am Fr, 27. Nov 2026 um 00:30 schrieb Carol &lt;carol@example.net&gt;:</div>"
        "<blockquote><div>Wie geht's?</div></blockquote>"
    ) in reply.body_html
    assert "Am Fr, 27. Nov 2026 um 00:30 schrieb Carol <carol@example.net>:\n> Wie geht's?" in reply.body
    alice_client.post(reverse("outgoing:reply", args=[message.id]), {"kind": "forward"})
    forward = OutgoingMessage.objects.get(owner=alice, kind="forward")
    assert (
        "---------- Weitergeleitete Nachricht ----------" in forward.body_html
        and "<blockquote>" not in forward.body_html
    )
    # Sent: the quotation marked as cited in the HTML, "> " in the text.
    reply_data = compose_data(account, to=reply.to, subject=reply.subject, format="rich", body_html=reply.body_html)
    alice_client.post(reverse("outgoing:edit", args=[reply.id]), {**reply_data, "action": "save"})
    raw = outgoing_actions.queue(alice, reply.id, delay=0).raw
    mail = email.message_from_bytes(bytes(raw), policy=email.policy.default)
    assert '<blockquote type="cite"' in mail.get_body(("html",)).get_content()
    assert "\n> Wie geht's?" in mail.get_body(("plain",)).get_content().replace("\r\n", "\n")


def test_a_reply_in_plain_text_has_no_html(alice):
    account = sending_account(alice)
    Profile.objects.update_or_create(user=alice, defaults={"compose_format": "plain"})
    message = store_message(account, build_message("Plans", "Shall we meet?"), "u1")
    reply = send.start_reply(alice, message, OutgoingMessage.Kind.REPLY)
    assert reply.body_html == "" and "> Shall we meet?" in reply.body


def test_a_rich_reply_to_hostile_html_quotes_nothing_that_runs_or_loads(alice):
    account = sending_account(alice)
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Mallory <m@mallory.example>", "alice@example.org", "Hi"
    msg.set_content("plain")
    msg.add_alternative(
        '<p onmouseover="x()">Hello<script>steal()</script><img src="https://evil.example/t.gif">'
        '<a href="javascript:alert(1)">click</a><iframe src="https://evil.example/"></iframe>'
        '<style>* { display: none }</style><img src="cid:logo@evil"></p>',
        subtype="html",
    )
    message = store_message(account, msg.as_bytes(policy=email.policy.SMTP), "u1")
    reply = send.start_reply(alice, message, OutgoingMessage.Kind.REPLY)
    for bad in ("script", "steal", "onmouseover", "evil.example", "javascript", "iframe", "style", "cid:"):
        assert bad not in reply.body_html
    assert "<blockquote><p>Hello<a>click</a></p>\n</blockquote>" in reply.body_html


def test_a_signature_in_rich_text_and_its_text_version(alice, alice_client):
    account = sending_account(alice)
    main = Identity.objects.get(account=account, is_default=True)
    response = alice_client.post(
        reverse("outgoing:identity", args=[account.id, main.id]),
        {
            "address": "alice@example.org",
            "name": "Alice",
            "signature": "ignored",
            "signature_html": '<div><strong>Alice</strong><script>x()</script> <a href="https://a.example/">web</a></div>',
            "signature_format": "rich",
            "signature_placement": "above",
        },
    )
    assert response.status_code == 302
    main.refresh_from_db()
    link = '<a href="https://a.example/" target="_blank" rel="noopener noreferrer">web</a>'
    assert main.signature_html == f"<div><strong>Alice</strong> {link}</div>"
    assert main.signature == "*Alice* web <https://a.example/>"
    assert SmtpSettings.objects.get(account=account).signature == main.signature  # plain messages use the text
    message = store_message(account, build_message("Plans", "Shall we meet?"), "u1")
    reply = send.start_reply(alice, message, OutgoingMessage.Kind.REPLY)
    assert "<div>--\u00a0</div><div><strong>Alice</strong>" in reply.body_html
    # Changing the text signature in the sending settings makes it a text signature again.
    outgoing_actions.save(
        account,
        {"host": "smtp.example.org", "port": 587, "security": "starttls", "auth": "same",
         "from_email": "alice@example.org", "signature": "Just text"},
    )  # fmt: skip
    main.refresh_from_db()
    assert (main.signature, main.signature_html) == ("Just text", "")
    # The page opens a rich signature in the editor, a text one in the text field.
    alias = identities.save(alice, account, None, {"address": "b@example.org", "signature": "Plain sig"})
    page = alice_client.get(reverse("outgoing:identity", args=[account.id, alias.id])).content.decode()
    assert 'data-rich-start="plain"' in page
