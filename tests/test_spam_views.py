"""The spam filter on the user's pages: which filter is active, the account's and the user's settings, the marks."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailbox.models import Folder, Message
from spam.models import PendingLearn, SafeSender, SpamSettings
from tests.factories import build_message, make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def account_page(client, account) -> str:
    response = client.get(reverse("accounts:detail", args=[account.id]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_account_page_says_which_filter_is_active(alice, alice_client, settings):
    account = make_account(alice)
    page = account_page(alice_client, account)
    assert "No spam filter checks this account's mail." in page
    assert 'id="spam-filter-form"' in page

    response = alice_client.post(
        reverse("spam:account", args=[account.id]), {"trust": "on", "authserv_id": "MX.Provider.Example."}
    )
    assert response.status_code == 302 and response["Location"].endswith("#spam-filter")
    account.refresh_from_db()
    assert (account.spam_trust_provider, account.spam_authserv_id) == (True, "mx.provider.example")
    page = account_page(alice_client, account)
    assert "Your provider's verdict decides." in page
    assert "fails its sender's DMARC check at mx.provider.example" in page

    settings.WEBPOP_RSPAMD_URL = "http://127.0.0.1:11333"
    page = account_page(alice_client, account)
    assert "This server's spam filter (rspamd) checks new mail." in page
    assert 'id="spam-filter-form"' not in page  # rspamd judges every account alike


def test_the_account_page_speaks_german(alice, alice_client):
    account = make_account(alice)
    alice_client.cookies["django_language"] = "de"
    page = account_page(alice_client, account)
    assert "Kein Spamfilter prüft die Post dieses Kontos." in page


def test_a_bad_server_name_is_refused(alice, alice_client):
    account = make_account(alice)
    forged = {"trust": "on", "authserv_id": "mx example; dmarc=pass"}
    response = alice_client.post(reverse("spam:account", args=[account.id]), forged, follow=True)
    assert "Enter a server name such as mx.example.com." in response.content.decode()
    account.refresh_from_db()
    assert (account.spam_trust_provider, account.spam_authserv_id) == (False, "")


def test_thresholds_are_offered_with_rspamd_only_and_read_in_the_users_language(alice, alice_client, settings):
    preferences = reverse("accounts:preferences")
    assert 'id="spam-thresholds-form"' not in alice_client.get(preferences).content.decode()
    settings.WEBPOP_RSPAMD_URL = "http://127.0.0.1:11333"
    assert 'id="spam-thresholds-form"' in alice_client.get(preferences).content.decode()

    alice_client.cookies["django_language"] = "de"
    alice_client.post(reverse("spam:thresholds"), {"spam_score": "7,5", "probable_score": "3"})
    saved = SpamSettings.objects.get(user=alice)
    assert (saved.spam_score, saved.probable_score) == (7.5, 3.0)
    assert 'value="7,5"' in alice_client.get(preferences).content.decode()

    alice_client.cookies["django_language"] = "en"
    response = alice_client.post(reverse("spam:thresholds"), {"spam_score": "4", "probable_score": "5"}, follow=True)
    assert "Choose a lower score than the one for Spam." in response.content.decode()
    assert SpamSettings.objects.get(user=alice).spam_score == 7.5
    alice_client.post(reverse("spam:thresholds"), {"spam_score": "", "probable_score": ""})
    assert not SpamSettings.objects.filter(user=alice).exists()  # back to the filter's own judgment


def test_probably_spam_is_marked_in_the_list_and_the_message_and_not_spam_clears_it(
    alice, alice_client, settings, django_capture_on_commit_callbacks, spam_enqueued
):
    settings.WEBPOP_RSPAMD_URL = "http://127.0.0.1:11333"
    account = make_account(alice)
    doubtful = store_message(account, build_message("Cheap offer", sender="Deals <deals@shop.example>"), "d1")
    Message.objects.filter(id=doubtful.id).update(spam_verdict="probable", spam_score=4.5)
    inbox = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert inbox.count('class="badge probable-spam"') == 1
    page = alice_client.get(reverse("mailbox:message", args=[doubtful.id])).content.decode()
    assert "The spam filter thinks this message is probably spam." in page

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("spam:not_spam", args=[doubtful.id]))
    assert response.status_code == 302
    doubtful.refresh_from_db()
    assert (doubtful.folder, doubtful.spam_verdict) == (Folder.INBOX, "")
    assert SafeSender.objects.filter(owner=alice, address="deals@shop.example").exists()
    assert PendingLearn.objects.get(message=doubtful).spam is False
    assert spam_enqueued == ["learn"]
    assert 'class="badge probable-spam"' not in alice_client.get(reverse("mailbox:inbox")).content.decode()
