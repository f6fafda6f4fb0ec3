"""The print view of a message and of a conversation (mailbox/views_print.py)."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from django.urls import reverse

from mailbox import actions, views_print
from mailbox.models import Message, RemoteImagePreference
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
HTML = (
    "<style>.promo { color: #c00 } body { background: #fafafa }</style>"
    "<h1 class='promo'>Spring sale</h1><script>alert('script')</script>"
    "<p onclick='alert(1)'>Everything must go. <a href='javascript:alert(2)'>bad link</a> "
    "<a href='https://shop.example/sale'>Shop now</a></p>"
    "<img src='https://tracker.example/banner.png' width='300' height='100' alt='Banner'>"
    "<img src='cid:logo@shop.example' alt='Logo'>"
)


def html_message(subject="Spring sale", message_id="<sale@shop.example>", in_reply_to=None, date=None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Shop <news@shop.example>"
    msg["To"] = "Alice <alice@example.org>"
    msg["Cc"] = "Dan <dan@example.net>"
    msg["Subject"] = subject
    msg["Date"] = date or "Thu, 26 Nov 2026 09:00:00 +0000"
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
    msg.set_content("Spring sale in plain text.")
    msg.add_alternative(HTML, subtype="html")
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@shop.example>", filename="logo.png")
    msg.add_attachment(b"%PDF-1.4 prices", maintype="application", subtype="pdf", filename="prices.pdf")
    return msg.as_bytes()


@pytest.fixture
def account(alice):
    return make_account(alice)


def printed(client, message, name="mailbox:print", **query):
    response = client.get(reverse(name, args=[message.id]), query)
    assert response.status_code == 200
    return response, response.content.decode()


def test_a_message_prints_its_headers_body_and_attachments_without_the_app_around_it(alice_client, account):
    message = store_message(account, html_message(), "p-1")
    response, html = printed(alice_client, message, view="text")
    assert response["Content-Security-Policy"] == views_print.PRINT_CSP
    shown = [
        "Shop &lt;news@shop.example&gt;", "Alice &lt;alice@example.org&gt;", "Dan &lt;dan@example.net&gt;",
        "Spring sale in plain text.", "prices.pdf", "application/pdf", "<dt>Date</dt>", "<dt>Subject</dt>",
    ]  # fmt: skip
    for text in shown:
        assert text in html, text
    assert 'class="topbar"' not in html and "Sign out" not in html  # no app chrome
    assert "csrfmiddlewaretoken" not in html and "<form" not in html  # nothing here to post, nothing to steal
    assert '<link rel="stylesheet" href="/static/css/print.css">' in html


def test_html_mail_is_printed_sanitized_with_its_own_images_and_remote_ones_blocked(alice, alice_client, account):
    message = store_message(account, html_message(), "p-1")
    # Even a reader who shows every sender's remote images on screen prints without them.
    RemoteImagePreference.objects.create(owner=alice, sender="")
    _response, html = printed(alice_client, message)
    body = re.search(r'<div class="print-html" id="webpop-message-(\d+)">(.*?)</div>\s*<section', html, re.S)
    assert body and int(body.group(1)) == message.id
    content = body.group(2)
    assert "Spring sale" in content and 'href="https://shop.example/sale"' in content
    assert "<script" not in content and "onclick" not in content and "javascript:" not in content
    assert "tracker.example" not in content and "data-webpop-blocked" in content
    # The style block is scoped to this message's own container.
    style = re.search(r"<style>(.*?)</style>", content, re.S).group(1)
    assert f"#webpop-message-{message.id} .promo" in style and "#webpop-message " not in style
    # The message's own image comes through a signed URL, as in the frame; it is not listed again below.
    [logo] = re.findall(r'<img src="([^"]+)" alt="Logo"', content)
    image = alice_client.get(logo)
    assert image.status_code == 200 and image.content == PNG
    attachments = html[html.index("print-attachments") :]
    assert "prices.pdf" in attachments and "logo.png" not in attachments


def test_with_sanitizing_switched_off_mail_html_is_never_inlined(alice_client, account, settings):
    settings.WEBPOP_SANITIZE_HTML = False
    message = store_message(account, html_message(), "p-1")
    _response, html = printed(alice_client, message)
    assert "print-html" not in html and "alert(" not in html
    assert "Spring sale in plain text." in html


def test_an_html_only_message_prints_its_text_on_request(alice_client, account):
    raw = (
        b"From: a@example.net\r\nSubject: Only HTML\r\nDate: Thu, 26 Nov 2026 09:00:00 +0000\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>First</p><p>Second &amp; last</p>\r\n"
    )
    message = store_message(account, raw, "p-1")
    _response, html = printed(alice_client, message, view="text")
    text = re.search(r'<pre class="print-text" dir="auto">(.*?)</pre>', html, re.S).group(1)
    assert "First" in text and "Second &amp; last" in text
    assert 'href="?"' in html  # back to the formatted view


def test_a_conversation_prints_every_message_of_its_thread_oldest_first(alice_client, account, bob):
    first = store_message(account, html_message(date="Mon, 23 Nov 2026 09:00:00 +0000"), "c-1")
    second = store_message(
        account,
        build_message("Re: Spring sale", "Is it still on?", sender="Alice <alice@example.org>",
                      date="Tue, 24 Nov 2026 09:00:00 +0000", message_id="<r1@example.org>"),
        "c-2",
    )  # fmt: skip
    third = store_message(
        account,
        html_message("Re: Spring sale", "<r2@shop.example>", in_reply_to="<r1@example.org>",
                     date="Wed, 25 Nov 2026 09:00:00 +0000"),
        "c-3",
    )  # fmt: skip
    Message.objects.filter(id=second.id).update(in_reply_to="<sale@shop.example>")
    from mailbox import threads

    threads.assign(list(Message.objects.filter(id__in=[first.id, second.id, third.id]).order_by("date")))
    # Another user's copy of the same conversation is not part of alice's.
    store_message(make_account(bob), html_message(), "bob-1")
    thread_ids = set(Message.objects.filter(owner=account.owner).values_list("thread_id", flat=True))
    assert len(thread_ids) == 1, "the three messages form one conversation"

    _response, single = printed(alice_client, second)
    assert "The whole conversation (3 messages)" in single
    _response, html = printed(alice_client, second, "mailbox:print_conversation")
    assert html.count('<article class="print-message">') == 3
    positions = [html.index(f'id="webpop-message-{first.id}"'), html.index("Is it still on?"),
                 html.index(f'id="webpop-message-{third.id}"')]  # fmt: skip
    assert positions == sorted(positions)  # oldest first
    for message in (first, third):  # each HTML message with its own container and styles
        assert f'id="webpop-message-{message.id}"' in html
        assert f"#webpop-message-{message.id} .promo" in html
    assert "3 messages" in html and "Only this message" in html


def test_a_message_outside_any_conversation_prints_alone_either_way(alice_client, account):
    message = store_message(account, build_message("Alone", "Just me."), "a-1")
    Message.objects.filter(id=message.id).update(thread_id=None)
    message.refresh_from_db()
    _response, html = printed(alice_client, message, "mailbox:print_conversation")
    assert html.count('<article class="print-message">') == 1 and "Just me." in html


def test_an_unreadable_stored_copy_is_said_so(alice_client, account):
    message = store_message(account, build_message("Gone", "x"), "g-1")
    Message.objects.filter(id=message.id).update(raw_path="raw/00/missing")
    _response, html = printed(alice_client, message)
    assert "The stored copy of this message cannot be read." in html


def test_only_the_owner_prints_and_never_a_message_deleted_for_good(alice, alice_client, bob_client, account):
    message = store_message(account, html_message(), "p-1")
    for name in ("mailbox:print", "mailbox:print_conversation"):
        assert bob_client.get(reverse(name, args=[message.id])).status_code == 404
        assert alice_client.post(reverse(name, args=[message.id])).status_code == 405
    actions.move(alice.id, [message.id], "trash")
    actions.empty_trash(alice.id)
    assert alice_client.get(reverse("mailbox:print", args=[message.id])).status_code == 404


def test_the_message_page_links_to_the_print_view(alice_client, account):
    message = store_message(account, build_message("Hi", "x"), "h-1")
    html = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert f'href="{reverse("mailbox:print", args=[message.id])}"' in html
