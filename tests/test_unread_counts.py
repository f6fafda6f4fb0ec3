"""Unread badges: exact per folder up to folders.UNREAD_CAP, then "999+", in one query for any number of folders."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from mailbox import folders
from mailbox.models import Message
from tests.factories import make_account

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def add_messages(account, count: int, **fields) -> None:
    now = timezone.now()
    start = Message.objects.count()
    Message.objects.bulk_create(
        Message(
            owner_id=account.owner_id, account=account, uidl=f"m{start + i}", sha256="0" * 64, size=10,
            raw_path="raw/x", subject=f"Subject {i}", date=now - dt.timedelta(seconds=i), **fields,
        )
        for i in range(count)
    )  # fmt: skip


def test_counts_are_exact_per_folder_and_only_the_owners(alice, bob, django_assert_num_queries):
    account = make_account(alice)
    travel, work = folders.create(alice.id, "Travel"), folders.create(alice.id, "Work")
    add_messages(account, 4)
    add_messages(account, 2, seen=True)
    add_messages(account, 3, folder="spam")
    add_messages(account, 5, folder=travel.slug)
    add_messages(account, 7, folder="archive")  # archive has no badge
    add_messages(make_account(bob), 6)
    with django_assert_num_queries(1):
        counts = folders.unread_counts(alice.id, ["inbox", "spam", travel.slug, work.slug])
    assert counts == {"inbox": 4, "spam": 3, travel.slug: 5}
    assert folders.unread_counts(alice.id, []) == {}


def test_counts_stop_above_the_cap_and_show_as_999_plus(alice_client, alice):
    account = make_account(alice)
    add_messages(account, folders.UNREAD_CAP + 5)
    assert folders.unread_counts(alice.id, ["inbox"]) == {"inbox": folders.UNREAD_CAP + 1}
    page = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert "<title>(999+) Inbox · webpop</title>" in page
    assert '<span class="count" id="unread-badge">999+</span>' in page
    assert 'data-unread-cap="999"' in page
    assert alice_client.get(reverse("mailbox:counts")).json()["unread"] == folders.UNREAD_CAP + 1


def test_exactly_the_cap_is_still_a_number(alice_client, alice):
    add_messages(make_account(alice), folders.UNREAD_CAP)
    page = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert "<title>(999) Inbox · webpop</title>" in page
    assert folders.badge(folders.UNREAD_CAP) == folders.UNREAD_CAP
    assert folders.badge(folders.UNREAD_CAP + 1) == "999+"
