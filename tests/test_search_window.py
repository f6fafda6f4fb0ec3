"""Windowed search (listing.Window): the page found among each folder's newest rows is the page the
whole search gives, on every page, whether the window holds a page or the whole search runs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mailbox import folders, listing, search
from mailbox.models import Folder, Message
from tests.factories import make_account

pytestmark = pytest.mark.django_db
WINDOWED = '"mailbox_message"."date" >='  # the windowed query's bound, as Django writes it


@pytest.fixture
def mailbox(alice):
    """120 messages in Inbox, Archive, a user folder and Trash; "kiwi" in every 3rd, "mango" in two old ones."""
    account = make_account(alice)
    travel = folders.create(alice.id, "Travel")
    where = [Folder.INBOX, Folder.ARCHIVE, travel.slug, Folder.INBOX, Folder.TRASH]
    now = timezone.now()
    Message.objects.bulk_create(
        Message(
            owner_id=alice.id, account=account, uidl=f"w{i}", sha256="0" * 64, size=1, raw_path="raw/x",
            subject="kiwi report" if i % 3 == 0 else ("mango" if i in (110, 118) else "plain"),
            folder=where[i % len(where)], date=now - dt.timedelta(minutes=i // 2),  # pairs share a date
        )
        for i in range(120)
    )  # fmt: skip
    return alice, [travel]


def walk(alice, user_folders, word: str, window: bool, size: int = 7) -> list[list[int]]:
    rows = Message.objects.filter(owner=alice).exclude(folder__in=[Folder.PURGED, Folder.TRASH, Folder.SPAM])
    parsed = search.parse(word)
    matching = search.apply(rows, parsed)
    covered = [Folder.INBOX, Folder.ARCHIVE, *(f.slug for f in user_folders)]
    pages, cursor = [], None
    while True:
        page = listing.page(
            matching, before=cursor, size=size, window=listing.Window(rows, covered) if window else None
        )
        pages.append([m.id for m in page.rows])
        if page.older is None:
            return pages
        cursor = page.older


@pytest.mark.parametrize("window_rows", [2, 5, 40, 10_000])
@pytest.mark.parametrize("word", ["kiwi", "mango", "nothing", "report"])
def test_windowed_pages_equal_the_whole_search(mailbox, monkeypatch, window_rows, word):
    alice, user_folders = mailbox
    monkeypatch.setattr(listing, "WINDOW_ROWS", window_rows)
    assert walk(alice, user_folders, word, window=True) == walk(alice, user_folders, word, window=False)


def test_a_dense_word_is_found_in_the_window_and_a_rare_one_by_the_whole_search(mailbox, monkeypatch):
    if not connection.features.supports_slicing_ordering_in_compound:
        pytest.skip("windows need LIMIT inside UNION (PostgreSQL); other databases run the whole search")
    alice, user_folders = mailbox
    monkeypatch.setattr(listing, "WINDOW_ROWS", 25)
    rows = Message.objects.filter(owner=alice).exclude(folder__in=[Folder.PURGED, Folder.TRASH, Folder.SPAM])
    window = listing.Window(rows, [Folder.INBOX, Folder.ARCHIVE, *(f.slug for f in user_folders)])

    def first_page(word):
        with CaptureQueriesContext(connection) as queries:
            page = listing.page(search.apply(rows, search.parse(word)), size=5, window=window)
        return [m.id for m in page.rows], [q["sql"] for q in queries.captured_queries]

    ids, sql = first_page("kiwi")
    assert len(sql) == 2 and WINDOWED in sql[1]  # the window's bound, then the window held the page
    assert len(ids) == 5
    ids, sql = first_page("mango")
    assert len(sql) == 3 and WINDOWED not in sql[2]  # too few in the window: the whole search ran
    assert len(ids) == 2
    monkeypatch.setattr(listing, "WINDOW_ROWS", 10_000)
    ids, sql = first_page("kiwi")
    assert len(sql) == 2 and WINDOWED not in sql[1]  # no folder that big: no window, the whole search
    assert len(ids) == 5


def test_search_page_through_the_view_is_windowed_and_complete(mailbox, alice_client, monkeypatch):
    alice, user_folders = mailbox
    monkeypatch.setattr(listing, "WINDOW_ROWS", 10)
    response = alice_client.get(reverse("mailbox:inbox"), {"q": "kiwi"})
    expected = walk(alice, user_folders, "kiwi", window=False, size=listing.PAGE_SIZE)[0]
    assert [m.id for m in response.context["page"].rows] == expected
    assert all(m.folder != Folder.TRASH for m in response.context["page"].rows)
    # in: is searched as asked, trash included
    trash = alice_client.get(reverse("mailbox:inbox"), {"q": "kiwi in:trash"})
    assert trash.context["page"].rows and all(m.folder == Folder.TRASH for m in trash.context["page"].rows)
