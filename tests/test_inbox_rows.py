"""Inbox rows prepared in Python (mailbox/rows.py): escaping, highlights, links, dates, conversations."""

from __future__ import annotations

import datetime as dt
import html
import re
import zoneinfo
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbox import rows
from tests.factories import build_message, make_account, store_message


def message(**fields):
    base = {
        "id": 7, "subject": "Hello", "from_name": "Carol", "from_email": "carol@example.net", "snippet": "Hi",
        "date": dt.datetime(2026, 11, 26, 9, 5, tzinfo=dt.UTC), "seen": True, "flagged": False,
        "has_attachments": False, "thread_id": 70,
    }  # fmt: skip
    return SimpleNamespace(**(base | fields))


def test_subject_sender_and_snippet_are_escaped():
    hostile = message(subject="<script>alert(1)</script>", from_name='"><img src=x onerror=alert(1)>', snippet="a & b")
    html = rows.render(rows.present([hostile]))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a &amp; b" in html
    assert 'aria-label="Select: &lt;script&gt;alert(1)&lt;/script&gt;"' in html


def test_highlight_marks_terms_without_letting_markup_through():
    row = rows.present([message(subject="Invoice <b>42</b>", snippet="your INVOICE")], highlight=["invoice", "<b>"])[0]
    assert row["subject"] == "<mark>Invoice</mark> <mark>&lt;b&gt;</mark>42&lt;/b&gt;"
    assert row["snippet"] == "your <mark>INVOICE</mark>"
    assert rows.highlighter(["x"])("<i>") == "&lt;i&gt;"  # one-letter terms are not marked


def test_highlight_never_marks_inside_an_escaped_character():
    # Searching "amp 27" must not find the "amp" of "&amp;" or the "27" of "&#x27;".
    assert rows.highlighter(["amp", "27"])("Tom & Jerry's") == "Tom &amp; Jerry&#x27;s"
    assert rows.highlighter(["amp", "27"])("Tom & Jerry's amp, 27") == (
        "Tom &amp; Jerry&#x27;s <mark>amp</mark>, <mark>27</mark>"
    )
    assert rows.highlighter(["lt", "quot"])('<"lt">') == "&lt;&quot;<mark>lt</mark>&quot;&gt;"


_CHARS = st.sampled_from("&<>\"'ampltgquox27#; AB")
# Pieces of the entities escaping produces, so the terms often hit one.
_ENTITY_PIECES = st.sampled_from(["amp", "lt", "gt", "quot", "27", "x27", "#x", "mp;", "&a", "t;"])


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=_CHARS, max_size=40),
    terms=st.lists(st.one_of(_ENTITY_PIECES, st.text(alphabet=_CHARS, min_size=2, max_size=4)), max_size=3),
)
def test_highlighted_text_is_the_text_escaped_piece_by_piece(text, terms):
    """Whatever the terms, every piece between marks is whole escaped text and the marks hold terms."""
    marked = str(rows.highlighter(terms)(text))
    pieces = re.split(r"</?mark>", marked)
    assert all(html.escape(html.unescape(piece)) == piece for piece in pieces)
    assert "".join(html.unescape(piece) for piece in pieces) == text
    lowered = {t.lower() for t in terms}
    assert all(html.unescape(piece).lower() in lowered for piece in re.findall(r"<mark>(.*?)</mark>", marked))


def test_rows_link_to_their_message_and_show_local_dates():
    with timezone.override(zoneinfo.ZoneInfo("Europe/Berlin")):
        row = rows.present([message(id=123)])[0]
    assert row["url"] == reverse("mailbox:message", args=[123])
    assert row["action_url"] == reverse("mailbox:row_action", args=[123])
    assert row["iso_date"] == "2026-11-26T10:05:00+01:00"
    assert row["full_date"] == "Nov 26, 2026 10:05"
    with translation.override("de"), timezone.override(dt.UTC):
        row = rows.present([message()])[0]
    assert row["full_date"] == "26. Nov 2026, 09:05"


@pytest.mark.parametrize(
    ("language", "today", "this_year", "older"),
    [("en", "09:05", "Mar 4", "Dec 31, 2025"), ("de", "09:05", "4. Mär", "31. Dez 2025")],
)
def test_short_dates_are_the_time_today_the_day_this_year_and_the_date_before(language, today, this_year, older):
    now = dt.datetime(2026, 11, 26, 18, 0, tzinfo=dt.UTC)
    sent = [
        message(id=1, date=dt.datetime(2026, 11, 26, 9, 5, tzinfo=dt.UTC)),
        message(id=2, date=dt.datetime(2026, 3, 4, 9, 5, tzinfo=dt.UTC)),
        message(id=3, date=dt.datetime(2025, 12, 31, 9, 5, tzinfo=dt.UTC)),
    ]
    with translation.override(language), timezone.override(dt.UTC):
        shown = [row["date"] for row in rows.present(sent, now=now)]
    assert shown == [today, this_year, older]


def test_today_is_the_readers_day_in_their_time_zone():
    # 23:30 UTC on the 25th is already the 26th in Berlin, "today" there at 08:00 local.
    now = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.UTC)
    late = message(date=dt.datetime(2026, 11, 25, 23, 30, tzinfo=dt.UTC))
    with timezone.override(zoneinfo.ZoneInfo("Europe/Berlin")):
        assert rows.present([late], now=now)[0]["date"] == "00:30"
    with timezone.override(dt.UTC):
        assert rows.present([late], now=now)[0]["date"] == "Nov 25"


def test_missing_subject_and_sender_have_placeholders():
    row = rows.present([message(subject="", from_name="", from_email="")])[0]
    assert (row["title"], row["sender"]) == ("(no subject)", "(unknown sender)")


def test_flags_and_conversations_shape_the_row():
    plain = rows.render(rows.present([message(seen=False, flagged=True, has_attachments=True)]))
    assert 'class="unread starred"' in plain and "#paperclip" in plain
    assert re.search(r'<button [^>]*class="row-star"[^>]*aria-pressed="true" aria-label="Remove star"', plain)
    grouped = rows.render(rows.present([message()], conversations={70: (3, 1)}))
    assert 'class="unread"' in grouped and 'aria-label="3 messages">3</span>' in grouped
    alone = rows.render(rows.present([message(seen=False)], conversations={}))  # in no listed conversation
    assert "thread-count" not in alone and 'class="unread"' in alone
    single = rows.render(rows.present([message()]))  # not grouped: no count
    assert "thread-count" not in single and 'class=""' in single
    assert re.search(r'<button [^>]*class="row-star"[^>]*value="star" aria-pressed="false" aria-label="Star"', single)


@pytest.mark.django_db
def test_inbox_page_lists_stored_mail_through_the_rows(alice_client, alice):
    account = make_account(alice)
    stored = store_message(account, build_message("Budget <draft>", "see attached", sender="Anna <anna@x.test>"), "1")
    page = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert f'<li class="unread" data-id="{stored.id}">' in page
    assert f'href="{reverse("mailbox:message", args=[stored.id])}"' in page
    assert "Budget &lt;draft&gt;" in page and "Budget <draft>" not in page


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("fmt", ["M j, Y H:i", "j. M Y, H:i", r"d.m.y G\h i", "D, j M Y", "n/j/Y"])
def test_list_dates_match_djangos_date_format(language, fmt):
    from django.utils import dateformat

    with translation.override(language):
        format_date = rows.date_formatter(fmt)
        for value in (dt.datetime(2026, 1, 5, 7, 3), dt.datetime(1999, 12, 31, 23, 59), dt.datetime(2026, 5, 9)):
            assert format_date(value) == dateformat.format(value, fmt)


@pytest.mark.django_db
@pytest.mark.sqlite
def test_conversation_sizes_count_the_folder_and_owner_only(alice, bob):
    from mailbox import listing
    from mailbox.models import Message

    account, other = make_account(alice), make_account(bob)

    def add(acct, thread, uidl, **fields):
        Message.objects.create(
            owner_id=acct.owner_id, account=acct, uidl=uidl, sha256="0" * 64, size=1, raw_path="raw/x",
            date=timezone.now(), thread_id=thread, **fields,
        )  # fmt: skip

    add(account, 1, "a", seen=True)
    add(account, 1, "b")
    add(account, 1, "c", folder="archive")
    add(account, 2, "d", seen=True)
    add(other, 1, "e")
    assert listing.conversation_sizes(alice.id, "inbox", [1, 2, 3]) == {1: (2, 1), 2: (1, 0)}
