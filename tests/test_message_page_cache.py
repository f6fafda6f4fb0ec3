"""The conversation page comes from the page cache while nothing it shows has changed.

A user's latest conversation page is kept (webpop.lib.pagecache, the "conversation" slot) under
two versions: the mailbox version every page keys on (``pagecache.touch``) and the message-page
version, replaced by changes only this page shows (``pagecache.touch_message_pages``: a server
copy deleted, an unsubscribe's progress, a calendar answer, remote images, damage, sender trust).
Each case below keeps a page, makes one change through the code the app runs for it, and loads the
page again: a writer that forgets its touch leaves the old page, and its case fails.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from mailbox import actions, damage, invitations, store, sync
from mailbox.models import Message
from spam import actions as spam_actions
from spam import scanning
from tests import html_samples
from tests.factories import build_message, make_account, store_message
from tests.test_invitations import ics, invitation_mail
from tests.test_spam_trust_views import AUTHSERV, signed
from webpop.lib import pagecache

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def rendered(response) -> bool:
    """Whether the view built the page (a template context) rather than serving it from the cache."""
    return response.context is not None


def url_of(message: Message) -> str:
    return reverse("mailbox:message", args=[message.id])


def kept(client: Client, message: Message) -> bytes:
    """Views the message's page until it is served from the cache; its content."""
    client.get(url_of(message))
    client.get(url_of(message))  # the first view marked it read: rendered once more, then kept
    page = client.get(url_of(message))
    assert page.status_code == 200 and not rendered(page), "the page is kept"
    return page.content


def assert_replaced(client: Client, message: Message, *, shows: bytes = b"", gone: bytes = b"") -> bytes:
    """The page is rendered again after a change, and shows it."""
    page = client.get(url_of(message))
    assert page.status_code == 200 and rendered(page), "the change replaced the page"
    if shows:
        assert shows in page.content
    if gone:
        assert gone not in page.content
    return page.content


@pytest.fixture
def account(alice):
    return make_account(alice, label="Work mail")


@pytest.fixture
def hello(account):
    return store_message(account, build_message("Hello there", sender="Carol <carol@example.net>"), "u1")


def test_a_viewed_conversation_is_served_without_a_query(alice_client, hello, django_assert_num_queries):
    content = kept(alice_client, hello)
    assert b"Hello there" in content
    with django_assert_num_queries(0):
        assert not rendered(alice_client.get(url_of(hello)))


def test_a_served_page_carries_a_working_csrf_token(alice, hello):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    content = kept(client, hello)
    assert pagecache.placeholder().encode() not in content
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', content).group(1).decode()
    posted = client.post(reverse("mailbox:bulk"), {"action": "star", "ids": [hello.id], "csrfmiddlewaretoken": token})
    assert posted.status_code == 302
    hello.refresh_from_db()
    assert hello.flagged


def test_only_the_latest_conversation_is_kept(alice_client, account, hello):
    other = store_message(account, build_message("Other news"), "u2")
    kept(alice_client, hello)
    alice_client.get(url_of(other))
    assert rendered(alice_client.get(url_of(hello))), "the other conversation took its place"


def test_a_page_with_a_reader_choice_is_rendered(alice_client, hello):
    kept(alice_client, hello)
    assert rendered(alice_client.get(url_of(hello), {"view": "text"}))
    assert rendered(alice_client.get(url_of(hello), {"earlier": "all"}))


def test_another_user_never_gets_alices_page(alice_client, bob_client, hello):
    kept(alice_client, hello)
    assert bob_client.get(url_of(hello)).status_code == 404


def test_opening_an_unread_conversation_keeps_it_only_once_read(alice_client, hello):
    first = alice_client.get(url_of(hello))
    assert rendered(first)
    hello.refresh_from_db()
    assert hello.seen
    second = alice_client.get(url_of(hello))
    assert rendered(second), "the first view's page was built before its messages were read"
    assert not rendered(alice_client.get(url_of(hello)))


def test_a_change_to_the_mail_replaces_it(alice_client, hello):
    kept(alice_client, hello)
    actions.set_flagged(hello.owner_id, [hello.id], True)
    assert_replaced(alice_client, hello, shows=b"starred")


def test_a_change_only_this_page_shows_keeps_the_folder_pages(alice_client, hello):
    kept(alice_client, hello)
    alice_client.get("/")
    assert not rendered(alice_client.get("/"))
    pagecache.touch_message_pages([hello.owner_id])
    assert_replaced(alice_client, hello)
    assert not rendered(alice_client.get("/")), "the inbox is still kept"


# --- What only the conversation page shows, through the code that changes it -------------------


def test_remote_images_allowed_for_a_sender_replace_it(alice_client, account):
    raw = html_samples.html_message('<p>Sale</p><img src="https://cdn.shop.example/shoe.jpg" alt="Shoe">',
                                    sender="Shop <deals@shop.example>")  # fmt: skip
    newsletter = store_message(account, raw, "nl-1")
    kept(alice_client, newsletter)
    url = reverse("mailbox:remote_images_sender", args=[newsletter.id])
    assert alice_client.post(url, {"action": "always"}).status_code == 302
    alice_client.get(url_of(newsletter))  # the flash message is shown on a page not kept
    assert "shown for deals@shop.example" in kept(alice_client, newsletter).decode()
    settings_url = reverse("mailbox:remote_image_settings")
    assert alice_client.post(settings_url, {"remove": "deals@shop.example"}).status_code == 302
    assert_replaced(alice_client, newsletter, gone=b"shown for deals@shop.example")


def test_a_damage_mark_and_its_clearing_replace_it(alice_client, hello):
    kept(alice_client, hello)
    original = store.path_of(hello.raw_path)
    saved = original.read_bytes()
    original.unlink()
    damage.mark(hello.raw_path, hello.sha256, "missing")  # as verifystore does
    assert_replaced(alice_client, hello, shows=b"notice-damaged")
    original.write_bytes(saved)  # restored from a backup
    damage.clear([hello.raw_path])  # as restoring it through the app does
    assert_replaced(alice_client, hello, gone=b"notice-damaged")


def test_a_server_copy_found_gone_by_a_sync_replaces_it(alice_client, dovecot_account):
    account = dovecot_account(label="Server mail")  # its mailbox on the server is empty
    message = store_message(account, build_message("Fetched earlier"), "gone-from-the-server")
    assert b"<dd>On server</dd>" in kept(alice_client, message)
    result = sync.sync_account(account.id)
    assert result.error is None
    assert_replaced(alice_client, message, shows=b"<dd>Gone from server</dd>")


def test_a_scan_recording_the_senders_trust_replaces_it(alice, alice_client):
    account = make_account(alice)
    assert spam_actions.set_provider_trust(alice.id, account.id, trust=True, authserv_id=AUTHSERV)
    account.refresh_from_db()
    message = store_message(account, signed(), "s1")
    assert b"Signed by example.com" not in kept(alice_client, message)
    scanning.scan_due()
    assert_replaced(alice_client, message, shows=b"Signed by example.com")


def test_answering_an_invitation_replaces_it(alice, alice_client, smtp_account, send_enqueued):
    message = store_message(smtp_account(), invitation_mail(ics()), "inv-1")
    assert b"You accepted." not in kept(alice_client, message)
    invitations.answer(alice, message.attachments.get().id, "meeting-1@example.net", "", "ACCEPTED")
    assert_replaced(alice_client, message, shows=b"You accepted.")
