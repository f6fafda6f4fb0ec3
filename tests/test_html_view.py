"""The HTML message view without a browser: headers, access, signed URLs, cache, remote-image choices."""

from __future__ import annotations

import re
import time

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from mailbox import sanitize, store, sync, views_html
from mailbox.models import Message, RemoteImagePreference
from tests import html_samples
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

PNG = html_samples.png(4, 4, (10, 200, 10))
FRAME_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; font-src 'self'; form-action 'none'; "
    "frame-ancestors 'self'; base-uri 'none'; sandbox allow-popups allow-popups-to-escape-sandbox"
)


def body_url(message) -> str:
    return reverse("mailbox:message_body", args=[message.id])


def page_url(message) -> str:
    return reverse("mailbox:message", args=[message.id])


@pytest.fixture
def account(alice):
    return make_account(alice)


@pytest.fixture
def newsletter(account):
    raw = html_samples.html_message(
        '<p style="color:#c00">Big sale</p><img src="cid:logo@shop" alt="Logo">'
        '<img src="https://cdn.shop.example/shoe.jpg" alt="Shoe" width="200">'
        '<img src="https://t.shop.example/o.gif" width="1" height="1"><script>alert(1)</script>',
        sender="Shop <Deals@Shop.example>",
        cids={"logo@shop": PNG},
    )
    return store_message(account, raw, "nl-1")


def cid_urls(html: str) -> list[str]:
    return re.findall(r'src="(/message/\d+/asset/[^"]+/cid/\d+/)"', html)


# --- The body document -------------------------------------------------------------------------


def test_body_document_headers(alice_client, newsletter):
    response = alice_client.get(body_url(newsletter))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Security-Policy"] == FRAME_CSP
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert '<meta name="responsive-embedded-sizing"' in html
    assert '<p style="color: #c00">Big sale</p>' in html
    assert "<script" not in html.replace("<script>", "") and "alert(1)" not in html
    assert "cdn.shop.example" not in html and "t.shop.example" not in html
    assert "data-webpop-blocked" in html


def test_the_message_page_frames_the_body_sandboxed(alice_client, newsletter):
    html = alice_client.get(page_url(newsletter)).content.decode()
    [iframe] = re.findall(r"<iframe[^>]*>", html)
    sandbox = re.search(r'sandbox="([^"]*)"', iframe).group(1).split()
    assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
    assert set(sandbox) == {"allow-popups", "allow-popups-to-escape-sandbox"}
    assert f'src="{body_url(newsletter)}"' in iframe
    assert "Remote images are blocked" in html and "1 tracking pixel removed" in html
    assert "logo.png" not in html  # the inline logo is not listed as an attachment
    assert "/static/css/message.css" in html


def test_other_pages_still_refuse_framing(alice_client, newsletter):
    assert alice_client.get(page_url(newsletter))["X-Frame-Options"] == "DENY"


def test_cid_images_through_short_lived_signed_urls(alice_client, newsletter, settings, monkeypatch):
    html = alice_client.get(body_url(newsletter)).content.decode()
    [url] = cid_urls(html)
    anonymous = Client()  # the sandboxed frame has an opaque origin: no session cookie
    response = anonymous.get(url)
    assert response.status_code == 200
    assert response.content == PNG
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == "inline"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    later = time.time() + settings.WEBPOP_HTML_ASSET_MAX_AGE + 1
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert anonymous.get(url).status_code == 403


def test_signed_urls_are_bound_to_the_user_and_the_message(alice, bob, alice_client, bob_client, newsletter):
    [url] = cid_urls(alice_client.get(body_url(newsletter)).content.decode())
    token = url.split("/")[4]
    attachment_id = int(url.split("/")[6])
    bobs = store_message(make_account(bob), html_samples.html_message("<p>x</p>", cids={"a@b": PNG}), "b1")
    bobs_attachment = bobs.attachments.get()
    anonymous = Client()
    # Alice's token on Bob's message, or on a message id that is not the one signed: refused.
    assert anonymous.get(url.replace(f"/message/{newsletter.id}/", f"/message/{bobs.id}/")).status_code == 403
    # Alice's token for one of Bob's attachments under her own message: not found.
    other = url.replace(f"/cid/{attachment_id}/", f"/cid/{bobs_attachment.id}/")
    assert anonymous.get(other).status_code == 404
    # A token Bob could mint for himself does not open Alice's message.
    bobs_token = views_html.asset_token(bob.id, newsletter.id, False)
    assert anonymous.get(url.replace(token, bobs_token)).status_code == 404
    # Forged or unsigned tokens.
    assert anonymous.get(url.replace(token, "WzEsMSwwXQ:1abcde:forged")).status_code == 403
    assert anonymous.get(url.replace(token, "x")).status_code == 403


def test_non_image_parts_are_not_served_inline(alice_client, account):
    raw = html_samples.html_message('<img src="cid:doc@x" alt="doc">', cids={})
    message = store_message(account, raw, "doc-1")
    # An attachment whose bytes are HTML, even if it claims to be an image, is never served inline.
    attachment = message.attachments.create(
        filename="evil.png",
        content_type="image/png",
        size=30,
        content_id="doc@x",
        sha256="0" * 64,
        stored_path=store.write_blob(b"<script>alert(1)</script>").relpath,
    )
    Message.objects.filter(id=message.id).update(html_cache_version=0)
    html = alice_client.get(body_url(message)).content.decode()
    [url] = cid_urls(html)
    assert url.endswith(f"/cid/{attachment.id}/")
    assert Client().get(url).status_code == 404


def test_bob_gets_404_for_alices_html_urls(bob_client, newsletter):
    assert bob_client.get(body_url(newsletter)).status_code == 404
    url = reverse("mailbox:remote_images_sender", args=[newsletter.id])
    assert bob_client.post(url, {"action": "always"}).status_code == 404
    assert not RemoteImagePreference.objects.exists()


def test_anonymous_users_get_no_body(newsletter):
    response = Client().get(body_url(newsletter))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_state_changes_are_post_only_with_csrf(alice, newsletter):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    url = reverse("mailbox:remote_images_sender", args=[newsletter.id])
    assert client.get(url).status_code == 405
    assert client.post(url, {"action": "always"}).status_code == 403
    assert client.post(reverse("mailbox:remote_image_settings"), {"everyone": "on"}).status_code == 403
    assert not RemoteImagePreference.objects.exists()
    page = client.get(page_url(newsletter))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    assert client.post(url, {"action": "always", "csrfmiddlewaretoken": token}).status_code == 302
    assert RemoteImagePreference.objects.filter(sender="deals@shop.example").exists()


# --- Remote images -----------------------------------------------------------------------------


def remote_srcs(html: str) -> list[str]:
    return re.findall(r'src="(/message/\d+/asset/[^"]+/remote/\d+/)"', html)


def test_remote_images_this_time_always_for_sender_and_for_everyone(alice, alice_client, bob_client, newsletter):
    assert remote_srcs(alice_client.get(body_url(newsletter)).content.decode()) == []
    once = alice_client.get(body_url(newsletter), {"images": "1"}).content.decode()
    assert len(remote_srcs(once)) == 1  # the tracking pixel stays removed
    page = alice_client.get(page_url(newsletter), {"images": "1"}).content.decode()
    assert f'src="{body_url(newsletter)}?images=1"' in page

    url = reverse("mailbox:remote_images_sender", args=[newsletter.id])
    assert alice_client.post(url, {"action": "always"}).status_code == 302
    assert list(RemoteImagePreference.objects.values_list("owner", "sender")) == [(alice.id, "deals@shop.example")]
    assert len(remote_srcs(alice_client.get(body_url(newsletter)).content.decode())) == 1
    assert "shown for deals@shop.example" in alice_client.get(page_url(newsletter)).content.decode()

    assert alice_client.post(url, {"action": "never"}).status_code == 302
    assert remote_srcs(alice_client.get(body_url(newsletter)).content.decode()) == []

    settings_url = reverse("mailbox:remote_image_settings")
    assert alice_client.post(settings_url, {"everyone": "on"}).status_code == 302
    assert len(remote_srcs(alice_client.get(body_url(newsletter)).content.decode())) == 1
    assert "Always show remote images" not in alice_client.get(settings_url).content.decode()
    # Bob's own setting page knows nothing of Alice's choices.
    bobs = bob_client.get(settings_url).content.decode()
    assert "every sender" not in bobs.split('<main id="main"')[1].split("Senders")[0]
    assert alice_client.post(settings_url, {"everyone": "off"}).status_code == 302
    assert remote_srcs(alice_client.get(body_url(newsletter)).content.decode()) == []


def test_settings_page_lists_and_removes_senders(alice, alice_client):
    RemoteImagePreference.objects.create(owner=alice, sender="news@a.example")
    url = reverse("mailbox:remote_image_settings")
    assert "news@a.example" in alice_client.get(url).content.decode()
    alice_client.post(url, {"remove": "news@a.example"})
    assert not RemoteImagePreference.objects.exists()


# --- Sanitize on first view, cached with the sanitizer's version ---------------------------------


@pytest.fixture
def count_sanitize(monkeypatch):
    calls = []
    real = sanitize.sanitize

    def counting(markup, content_ids=None):
        calls.append(len(markup))
        return real(markup, content_ids)

    monkeypatch.setattr(sanitize, "sanitize", counting)
    return calls


def test_ingest_never_sanitizes(monkeypatch, account):
    def refuse(*args, **kwargs):
        raise AssertionError("bleach ran at ingest")

    monkeypatch.setattr(sanitize, "sanitize", refuse)
    monkeypatch.setattr(sanitize, "clean", refuse)
    monkeypatch.setattr(sanitize._Policy, "run", refuse)
    message = store_message(account, html_samples.message("01_retail_sale"), "ingest-1")
    assert (message.html_cache, message.html_cache_version) == ("", 0)


def test_first_view_sanitizes_and_later_views_use_the_cache(alice_client, newsletter, count_sanitize, monkeypatch):
    alice_client.get(page_url(newsletter))
    assert len(count_sanitize) == 1
    newsletter.refresh_from_db()
    assert newsletter.html_cache_version == sanitize.VERSION and "Big sale" in newsletter.html_cache
    assert newsletter.html_cache_meta["remote"] == ["https://cdn.shop.example/shoe.jpg"]

    def no_file(relpath):
        raise AssertionError("the cached body needs no stored file")

    monkeypatch.setattr(store, "open_file", no_file)
    for _ in range(3):
        assert alice_client.get(body_url(newsletter)).status_code == 200
    assert len(count_sanitize) == 1


def test_the_body_url_sanitizes_when_nothing_is_cached_yet(alice_client, newsletter, count_sanitize):
    response = alice_client.get(body_url(newsletter))
    assert response.status_code == 200 and "Big sale" in response.content.decode()
    assert len(count_sanitize) == 1


def test_a_new_sanitizer_version_re_sanitizes_lazily(alice_client, newsletter, count_sanitize, monkeypatch):
    alice_client.get(body_url(newsletter))
    monkeypatch.setattr(sanitize, "VERSION", sanitize.VERSION + 1)
    alice_client.get(body_url(newsletter))
    alice_client.get(body_url(newsletter))
    assert len(count_sanitize) == 2
    newsletter.refresh_from_db()
    assert newsletter.html_cache_version == sanitize.VERSION


def test_sanitizer_switched_off_serves_raw_html_under_the_same_walls(alice_client, newsletter, settings):
    settings.WEBPOP_SANITIZE_HTML = False
    response = alice_client.get(body_url(newsletter))
    assert "<script>alert(1)</script>" in response.content.decode()
    assert response["Content-Security-Policy"] == FRAME_CSP
    assert response["X-Frame-Options"] == "SAMEORIGIN"


# --- Text, toggles, odd messages --------------------------------------------------------------------


def test_plain_text_toggle(alice_client, account):
    raw = html_samples.html_message("<p>Hello <b>HTML</b></p>", text="Hello text")
    message = store_message(account, raw, "t-1")
    html = alice_client.get(page_url(message)).content.decode()
    assert "<iframe" in html and f'href="/message/{message.id}/?view=text"' in html
    text = alice_client.get(page_url(message), {"view": "text"}).content.decode()
    assert "<iframe" not in text and '<p dir="auto">Hello text</p>' in text


def test_html_only_message_has_a_readable_text_view(alice_client, account):
    raw = html_samples.html_message("<h1>Title</h1><p>Para &amp; more</p><script>x()</script>", text=None)
    message = store_message(account, raw, "t-2")
    text = alice_client.get(page_url(message), {"view": "text"}).content.decode()
    body = re.search(r'<div class="body plain-body"[^>]*>(.*?)</div>', text, re.S).group(1)
    assert "Title" in body and "Para &amp; more" in body and "x()" not in body


def test_text_only_message_has_no_frame(alice_client, account):
    message = store_message(account, build_message("Plain", "Just text <b>not bold</b>"), "t-3")
    html = alice_client.get(page_url(message)).content.decode()
    assert "<iframe" not in html and "Just text &lt;b&gt;not bold&lt;/b&gt;" in html
    assert alice_client.get(body_url(message)).status_code == 404


def test_unreadable_stored_message(alice_client, newsletter, monkeypatch):
    def gone(relpath):
        raise FileNotFoundError(relpath)

    monkeypatch.setattr(store, "open_file", gone)
    assert alice_client.get(body_url(newsletter)).status_code == 404
    assert alice_client.get(page_url(newsletter)).status_code == 200


def test_a_sanitizer_failure_shows_the_text_instead(alice_client, account, monkeypatch):
    def broken(markup, content_ids=None):
        raise RecursionError("boom")

    monkeypatch.setattr(sanitize, "sanitize", broken)
    message = store_message(account, html_samples.html_message("<p>Readable &amp; safe</p>", text=None), "f-1")
    page = alice_client.get(page_url(message)).content.decode()
    assert "formatting cannot be shown" in page
    body = alice_client.get(body_url(message)).content.decode()
    assert "<pre>Readable &amp; safe" in body


def test_too_deep_markup_is_flagged_on_the_page(alice_client, account):
    markup = "<div>" * 500 + "bottom" + "</div>" * 500
    message = store_message(account, html_samples.html_message(markup, text=None), "deep-1")
    assert "formatting cannot be shown" in alice_client.get(page_url(message)).content.decode()
    assert "bottom" in alice_client.get(body_url(message)).content.decode()


# --- The ten newsletters, without a browser ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(html_samples.SAMPLES))
def test_newsletter_samples_keep_their_layout(alice_client, account, name):
    expected = html_samples.SAMPLES[name]
    message = store_message(account, html_samples.message(name), f"s-{name}")
    html = alice_client.get(body_url(message)).content.decode()
    assert html.lower().count("<table") == expected["tables"]
    for fragment in expected["keep"]:
        assert fragment in html, fragment
    assert len(cid_urls(html)) == len(expected["cids"])
    message.refresh_from_db()
    assert message.html_cache_meta["trackers_removed"] == expected["trackers"]
    source = html_samples.html(name)
    assert sanitize.clean(sanitize.clean(source)) == sanitize.clean(source)
    body = html.split('<div id="webpop-message">', 1)[1].lower()
    for forbidden in ("<script", "<meta", "<link", "<title", "<!--", "javascript:", "://"):
        assert forbidden not in body.replace('href="https://', "").replace('href="mailto:', ""), forbidden
    assert not re.search(r"<[^>]+\son\w+=", body)


# --- One real Dovecot round trip ----------------------------------------------------------------------


@pytest.mark.dovecot
def test_a_newsletter_fetched_from_dovecot_renders_with_its_inline_logo(pop_user, dovecot_account, alice_client):
    pop_user.deliver(html_samples.message("01_retail_sale"))
    account = dovecot_account()
    assert sync.sync_account(account.id).fetched == 1
    message = Message.objects.get(account=account)
    page = alice_client.get(page_url(message)).content.decode()
    assert "<iframe" in page and "1 tracking pixel removed" in page
    html = alice_client.get(body_url(message)).content.decode()
    assert 'bgcolor="#1d3557"' in html
    [logo] = cid_urls(html)
    image = Client().get(logo)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
