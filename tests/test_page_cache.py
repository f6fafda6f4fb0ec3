"""Folder pages come from the cache while the mail is unchanged, and never show it out of date."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import MailAccount
from mailbox import folders, mime, pagecache, rules, store
from mailbox.models import Message, Rule, UserFolder
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

INBOX = "/"


def rendered(response) -> bool:
    """Whether the view built the page (a template context) rather than serving it from the cache."""
    return response.context is not None


@pytest.fixture
def account(alice):
    return make_account(alice, label="Work mail")


@pytest.fixture
def hello(account):
    return store_message(account, build_message("Hello there", sender="Carol <carol@example.net>"), "u1")


def test_an_unchanged_inbox_is_served_from_the_cache_without_a_query(alice_client, hello, django_assert_num_queries):
    first = alice_client.get(INBOX)
    assert rendered(first)
    with django_assert_num_queries(0):
        again = alice_client.get(INBOX)
    assert not rendered(again)
    assert again.status_code == 200 and b"Hello there" in again.content


def test_each_served_page_carries_a_working_csrf_token(alice, hello):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get(INBOX)
    page = client.get(INBOX)  # from the cache
    assert not rendered(page)
    assert pagecache.placeholder().encode() not in page.content
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    posted = client.post(reverse("mailbox:bulk"), {"action": "star", "ids": [hello.id], "csrfmiddlewaretoken": token})
    assert posted.status_code == 302
    hello.refresh_from_db()
    assert hello.flagged


def _store_batch(account):
    raw = build_message("Batch arrival", "new")
    with store.temp_file() as fh:
        fh.write(raw)
    stored = store.commit_raw(Path(fh.name), expected_size=len(raw), expected_sha256=hashlib.sha256(raw).hexdigest())
    store.save_messages(account, [("u-batch", stored, mime.parse_bytes(raw))])  # COPY on PostgreSQL


def _rule_on_existing(account):
    rule = Rule.objects.create(owner_id=account.owner_id, field="subject", contains="hello", action="star")
    rules.run_on_existing(account.owner_id, rule)


CHANGES = {
    "a message arrives": (
        lambda account, hello: store_message(account, build_message("Fresh news"), "u2"),
        b"Fresh news",
    ),
    "a batch arrives (COPY)": (lambda account, hello: _store_batch(account), b"Batch arrival"),
    "a QuerySet update": (
        lambda account, hello: Message.objects.filter(id=hello.id).update(subject="Edited subject"),
        b"Edited subject",
    ),
    "a save()": (lambda account, hello: _save_subject(hello, "Saved subject"), b"Saved subject"),
    "a move out of the inbox": (
        lambda account, hello: Message.objects.filter(id=hello.id).update(folder="archive"),
        b"Nothing in Inbox",
    ),
    "a deletion": (lambda account, hello: Message.objects.filter(id=hello.id).delete(), b"Nothing in Inbox"),
    "a rule run on existing mail": (lambda account, hello: _rule_on_existing(account), b' starred"'),
    "a new folder": (lambda account, hello: folders.create(account.owner_id, "Receipts"), b"Receipts"),
    "an account renamed": (lambda account, hello: _rename(account, "Home mail"), b"Home mail"),
    "an account renamed by update": (
        lambda account, hello: MailAccount.objects.filter(id=account.id).update(label="Club mail"),
        b"Club mail",
    ),
}


def _save_subject(message, subject):
    message.subject = subject
    message.save()


def _rename(account, label):
    account.label = label
    account.save()


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_the_page_shows_every_change_to_the_mail(alice, alice_client, account, hello, change):
    make_account(alice, username="second", label="Second")  # the account list shows with two accounts
    apply, expected = CHANGES[change]
    alice_client.get(INBOX)
    assert not rendered(alice_client.get(INBOX))
    apply(account, hello)
    after = alice_client.get(INBOX)
    assert rendered(after)
    assert expected in after.content


def test_marking_read_through_the_page_updates_the_counts(alice_client, hello):
    assert b"(1) Inbox" in alice_client.get(INBOX).content
    alice_client.post(reverse("mailbox:bulk"), {"action": "read", "ids": [hello.id]})
    assert b"(1) Inbox" not in alice_client.get(INBOX).content


def test_changes_to_what_no_page_shows_keep_the_cached_page(alice_client, hello):
    alice_client.get(INBOX)
    Message.objects.filter(id=hello.id).update(html_cache="<p>cached body</p>", server_state="delete_pending")
    assert not rendered(alice_client.get(INBOX))


def test_a_deleted_folder_leaves_the_page(alice, alice_client, hello):
    folder = folders.create(alice.id, "Receipts")
    assert b"Receipts" in alice_client.get(INBOX).content
    folders.delete(UserFolder.objects.get(id=folder.id))
    assert b"Receipts" not in alice_client.get(INBOX).content


def test_another_user_never_gets_alices_page(alice_client, bob_client, hello):
    alice_client.get(INBOX)
    page = bob_client.get(INBOX)
    assert rendered(page) and b"Hello there" not in page.content


def test_a_flash_message_is_shown_once_and_not_kept(alice_client, hello):
    alice_client.get(INBOX)
    alice_client.post(reverse("mailbox:bulk"), {"action": "trash", "ids": [hello.id]})
    flashed = alice_client.get(INBOX)
    assert b'class="flash"' in flashed.content
    assert b'class="flash"' not in alice_client.get(INBOX).content


def test_the_page_follows_the_language(alice_client, hello):
    alice_client.get(INBOX)
    german = alice_client.get(INBOX, headers={"accept-language": "de"})
    assert rendered(german) and 'lang="de"' in german.content.decode()


def test_pages_of_other_urls_are_their_own(alice_client, hello):
    alice_client.get(INBOX)
    archive = alice_client.get(reverse("mailbox:folder", args=["archive"]))
    assert rendered(archive) and b"Hello there" not in archive.content


@pytest.mark.parametrize(
    "query",
    ["?q=hello", "?before=1700000000.000000_5", "?utm=1", "?view=other", "?account=1&account=1"],
    ids=["search", "older page", "unknown parameter", "unknown view", "repeated parameter"],
)
def test_pages_a_user_could_multiply_are_never_cached(alice_client, hello, query):
    alice_client.get(INBOX + query)
    assert rendered(alice_client.get(INBOX + query))


def test_each_view_of_a_folder_is_cached(alice_client, account, hello):
    for query in ("?view=messages", f"?account={account.id}", f"?account={account.id}&view=conversations"):
        alice_client.get(INBOX + query)
        assert not rendered(alice_client.get(INBOX + query))


# --- The sidebar of pages rendered afresh (searches, older pages) -------------------------------

SEARCH = INBOX + "?q=hello"

SIDEBAR_CHANGES = {
    "a new folder": (lambda alice, account, hello: folders.create(alice.id, "Receipts"), b"Receipts"),
    "an account renamed": (lambda alice, account, hello: _rename(account, "Home mail"), b"Home mail"),
    "a message read": (
        lambda alice, account, hello: Message.objects.filter(id=hello.id).update(seen=True),
        b"<title>Search",  # no "(1) " unread count before the title any more
    ),
    "a message arriving unread": (
        lambda alice, account, hello: store_message(account, build_message("Other"), "u2"),
        b"<title>(2) Search",
    ),
}


@pytest.mark.parametrize("change", SIDEBAR_CHANGES, ids=list(SIDEBAR_CHANGES))
def test_a_search_page_shows_every_change_to_the_folders_accounts_and_counts(
    alice, alice_client, account, hello, change
):
    make_account(alice, username="second", label="Second")  # the account list shows with two accounts
    apply, expected = SIDEBAR_CHANGES[change]
    assert expected not in alice_client.get(SEARCH).content
    apply(alice, account, hello)
    assert expected in alice_client.get(SEARCH).content


def test_an_unchanged_sidebar_costs_no_query(alice, alice_client, hello, django_assert_num_queries):
    make_account(alice, username="second", label="Second")  # the account list shows with two accounts
    alice_client.get(SEARCH)
    # The search alone. On PostgreSQL it looks in its newest-mail window (listing.Window) first,
    # then, the mailbox being small, in all of it.
    with django_assert_num_queries(2 if connection.features.supports_slicing_ordering_in_compound else 1):
        page = alice_client.get(SEARCH)
    assert b"Hello there" in page.content and b"Work mail" in page.content


def test_the_sidebar_is_computed_afresh_when_the_cache_is_away(alice_client, hello, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    }
    page = alice_client.get(SEARCH)
    assert page.status_code == 200 and b"<title>(1) Search" in page.content


def test_users_never_share_a_sidebar(alice, alice_client, bob, bob_client, hello):
    make_account(alice, username="second", label="Second")
    make_account(bob, label="Bobs mail")
    make_account(bob, username="other", label="Bobs other mail")
    alice_client.get(SEARCH)
    page = bob_client.get(SEARCH)
    assert b"Work mail" not in page.content
    assert b"Bobs mail" in page.content
