"""Windowed search (listing.Window): the page found among each folder's newest rows is the page the
whole search gives, on every page, whether the window holds a page or the whole search runs."""

from __future__ import annotations

import datetime as dt
import email.utils

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mailbox import folders, listing, search
from mailbox.models import Folder, Message
from tests.conftest import require_postgresql
from tests.factories import make_account, store_message

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


@pytest.mark.sqlite
@pytest.mark.parametrize("window_rows", [2, 5, 40, 10_000])
@pytest.mark.parametrize("word", ["kiwi", "mango", "nothing", "report"])
def test_windowed_pages_equal_the_whole_search(mailbox, monkeypatch, window_rows, word):
    alice, user_folders = mailbox
    monkeypatch.setattr(listing, "WINDOW_ROWS", window_rows)
    assert walk(alice, user_folders, word, window=True) == walk(alice, user_folders, word, window=False)


def test_a_dense_word_is_found_in_the_window_and_a_rare_one_by_the_whole_search(mailbox, monkeypatch):
    require_postgresql()  # windows need LIMIT inside UNION; SQLite runs the whole search
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


@pytest.mark.sqlite
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


def test_a_first_page_bound_is_kept_while_the_mail_is_unchanged(mailbox, alice_client, monkeypatch):
    require_postgresql()
    alice, user_folders = mailbox
    monkeypatch.setattr(listing, "WINDOW_ROWS", 10)
    account = Message.objects.filter(owner=alice).first().account

    def search_page(word):
        with CaptureQueriesContext(connection) as queries:
            response = alice_client.get(reverse("mailbox:inbox"), {"q": word})
        bound_queries = [q for q in queries.captured_queries if q["sql"].startswith('(SELECT "mailbox_message"."date"')]
        return [m.id for m in response.context["page"].rows], len(bound_queries)

    ids, bounds = search_page("kiwi")
    assert bounds == 1 and ids == walk(alice, user_folders, "kiwi", window=False, size=listing.PAGE_SIZE)[0]
    ids, bounds = search_page("report")  # another search, same mail: the kept bound
    assert bounds == 0 and ids == walk(alice, user_folders, "report", window=False, size=listing.PAGE_SIZE)[0]

    when = email.utils.format_datetime(timezone.now() + dt.timedelta(minutes=5))
    raw = f"From: ann@example.com\r\nTo: alice@example.com\r\nSubject: kiwi news\r\nDate: {when}\r\n\r\nhi\r\n"
    newest = store_message(account, raw.encode(), "kiwi-news")
    ids, bounds = search_page("kiwi")  # new mail: the bound is read again, the new message on top
    assert bounds == 1 and ids[0] == newest.id
    assert ids == walk(alice, user_folders, "kiwi", window=False, size=listing.PAGE_SIZE)[0]
