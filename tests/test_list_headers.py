"""mailbox/list_headers.py: List-Unsubscribe, List-Unsubscribe-Post and List-Id as senders really write them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbox import list_headers, mime
from mailbox.list_headers import Mailto, Unsubscribe, parse, parse_mailto, uris
from tests.factories import make_account, store_message

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        # Mailchimp, SendGrid, Mailgun, Amazon SES: mailto first, then https.
        (
            "<mailto:unsub-abc@mc.example.com?subject=unsubscribe>, <https://x.list-manage.com/unsubscribe?u=1&id=2>",
            ["mailto:unsub-abc@mc.example.com?subject=unsubscribe", "https://x.list-manage.com/unsubscribe?u=1&id=2"],
        ),
        # https first, no space after the comma.
        ("<https://e.example/u/abc>,<mailto:u@e.example>", ["https://e.example/u/abc", "mailto:u@e.example"]),
        # Folded: the line break and indentation inside the brackets are not part of the URI.
        (
            "<https://e.example/u/\r\n\tlong-token>,\r\n <mailto:u@e.example>",
            ["https://e.example/u/long-token", "mailto:u@e.example"],
        ),
        # Comments around the items (RFC 2369 allows them).
        (
            "(Use this one) <mailto:u@e.example> (or this) , (web) <https://e.example/u>",
            ["mailto:u@e.example", "https://e.example/u"],
        ),
        ("  <https://e.example/u>  ", ["https://e.example/u"]),
        # Not starting with "<": the field is ignored.
        ("https://e.example/u", []),
        ("mailto:u@e.example, <https://e.example/u>", []),
        # Something after an item that is not a comma: the rest is ignored.
        ("<https://e.example/u> junk, <mailto:u@e.example>", ["https://e.example/u"]),
        # An item that is not bracketed: it and what follows are ignored.
        ("<https://e.example/u>, mailto:u@e.example, <mailto:v@e.example>", ["https://e.example/u"]),
        # Unclosed bracket.
        ("<https://e.example/u", []),
        ("", []),
        ("<>", []),
    ],
)
def test_uris_follow_rfc_2369(field, expected):
    assert uris(field) == expected


def test_at_most_ten_uris_are_read():
    assert len(uris(", ".join(f"<https://e.example/{n}>" for n in range(50)))) == 10


@pytest.mark.parametrize(
    ("field", "post", "https", "one_click", "mailto"),
    [
        ("<https://e.example/u?t=1>", ONE_CLICK, "https://e.example/u?t=1", True, None),
        ("<https://e.example/u?t=1>", "", "https://e.example/u?t=1", False, None),
        ("<https://e.example/u>", " list-unsubscribe = one-click ", "https://e.example/u", True, None),
        ("<https://e.example/u>", "List-Unsubscribe=Yes", "https://e.example/u", False, None),
        # One-click is a POST to an https URL: a mailto alone never makes it one-click.
        ("<mailto:u@e.example>", ONE_CLICK, "", False, Mailto("u@e.example")),
        # http is refused (clear text; RFC 8058 asks for https), as are other schemes.
        ("<http://e.example/u>", ONE_CLICK, "", False, None),
        ("<javascript:alert(1)>, <data:text/html,hi>, <ftp://e.example/u>", ONE_CLICK, "", False, None),
        # The first https and the first usable mailto, in the sender's order.
        (
            "<http://e.example/old>, <https://e.example/new>, <https://e.example/other>, <mailto:a@e.example>",
            ONE_CLICK,
            "https://e.example/new",
            True,
            Mailto("a@e.example"),
        ),
        ("<HTTPS://E.example/U>, <MAILTO:A@E.EXAMPLE>", "", "https://E.example/U", False, Mailto("A@e.example")),
        # Unusable https URLs are skipped for the next one.
        ("<https://user:pw@e.example/u>, <https://e.example/ok>", "", "https://e.example/ok", False, None),
        ("<https:///nohost>, <https://e.example:99999/u>", "", "", False, None),
        ("<https://" + "a" * 3000 + ".example/>", "", "", False, None),
    ],
)
def test_what_a_message_offers(field, post, https, one_click, mailto):
    offered = parse(field, post)
    assert (offered.https, offered.one_click, offered.mailto) == (https, one_click, mailto)
    assert bool(offered) == bool(https or mailto)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mailto:list-unsubscribe@lists.example.org", Mailto("list-unsubscribe@lists.example.org")),
        ("mailto:u@e.example?subject=Remove%20me", Mailto("u@e.example", "Remove me", "unsubscribe")),
        (
            "mailto:u@e.example?subject=unsub%20123&body=Please%20remove%0D%0Ame%20from%20the%20list",
            Mailto("u@e.example", "unsub 123", "Please remove\nme from the list"),
        ),
        # Field names without regard to case; "+" is a plus in mailto: (RFC 6068), not a space.
        ("mailto:u@e.example?SUBJECT=a+b&Body=c", Mailto("u@e.example", "a+b", "c")),
        # Percent-encoded address (a "+" tag).
        ("mailto:unsub%2B4711@e.example", Mailto("unsub+4711@e.example")),
        # A line break in the subject cannot inject a header.
        ("mailto:u@e.example?subject=x%0D%0ABcc:%20victim@e.example", Mailto("u@e.example", "x Bcc: victim@e.example")),
        # Other recipients and header fields are dropped: the request goes to the list only.
        ("mailto:u@e.example?cc=boss@e.example&bcc=x@e.example&to=y@e.example&in-reply-to=z", Mailto("u@e.example")),
        ("mailto:u@e.example,second@e.example", Mailto("u@e.example")),
        ("mailto:?to=u@e.example&subject=go", Mailto("u@e.example", "go")),
        # Empty subject and body fall back to "unsubscribe".
        ("mailto:u@e.example?subject=&body=%20", Mailto("u@e.example")),
        # IDN: the domain in its ASCII form, as SMTP needs it.
        ("mailto:abmelden@b%C3%BCcher.example", Mailto("abmelden@xn--bcher-kva.example")),
        ("mailto:abmelden@bücher.example", Mailto("abmelden@xn--bcher-kva.example")),
        # Not an address.
        ("mailto:", None),
        ("mailto:?subject=unsubscribe", None),
        ("mailto:no-at-sign.example", None),
        ("mailto:a@b@c.example", None),
        ("mailto:<u@e.example>", None),
        ("mailto:u@e.example%0D%0AX:y", None),
        ("mailto:u@.example", None),
        ("mailto:u@e..example", None),
        ("https://e.example/", None),
    ],
)
def test_mailto_uris(uri, expected):
    assert parse_mailto(uri) == expected


def test_long_subjects_and_bodies_are_cut():
    mailto = parse_mailto("mailto:u@e.example?subject=" + "s" * 500 + "&body=" + "b" * 1500)
    assert len(mailto.subject) == list_headers.MAX_SUBJECT_CHARS
    assert len(mailto.body) == 1500
    assert parse_mailto("mailto:u@e.example?body=" + "b" * 5000) is None  # the URI itself is too long


def test_idn_https_hosts_are_kept_as_written_and_fetchable():
    offered = parse("<https://bücher.example/abmelden?t=1>", ONE_CLICK)
    assert offered.https == "https://bücher.example/abmelden?t=1"
    from webpop.lib import guarded_http

    assert guarded_http.target(offered.https).host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("Weekly News <weekly.news.example.com>", "Weekly News"),
        ('"Weekly News" <weekly.news.example.com>', "Weekly News"),
        ("<weekly.news.example.com>", "weekly.news.example.com"),
        ("  ", ""),
        ("", ""),
        ("Name\x00With\x1bControls <x.example>", "Name With Controls"),
        ("x" * 500 + " <x.example>", "x" * 200),
    ],
)
def test_list_name(field, name):
    assert list_headers.list_name(field) == name


def test_json_round_trip():
    offered = parse("<mailto:u@e.example?subject=s&body=b>, <https://e.example/u>", ONE_CLICK, "Club <club.example>")
    assert Unsubscribe.from_json(offered.as_json()) == offered
    assert parse("").as_json() == {}
    assert not Unsubscribe.from_json({})
    assert not Unsubscribe.from_json(None)
    # A stored row claiming one-click without an https URL is not one-click.
    assert not Unsubscribe.from_json({"https": "", "one_click": True}).one_click


@given(st.text(max_size=300), st.text(max_size=60), st.text(max_size=100))
def test_any_text_parses_without_error(field, post, list_id):
    offered = parse(field, post, list_id)
    for uri in (offered.https,):
        assert not uri or uri.startswith("https://")
    if offered.mailto:
        assert "\n" not in offered.mailto.subject and "\r" not in offered.mailto.address


# --- At ingest, and for messages stored before ---------------------------------------------------


RAW = (
    b"From: Weekly <news@weekly.example>\r\nTo: alice@example.org\r\nSubject: Issue 12\r\n"
    b"Date: Thu, 26 Nov 2026 09:00:00 +0000\r\nMessage-ID: <i12@weekly.example>\r\n"
    b"List-Id: =?utf-8?q?W=C3=B6chentlich?= <weekly.example>\r\n"
    b"List-Unsubscribe: <mailto:leave@weekly.example?subject=leave>,\r\n <https://weekly.example/u/12>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nHello.\r\n"
)


def test_mime_reads_the_list_fields():
    parsed = mime.parse_bytes(RAW)
    assert parsed.list_unsubscribe == "<mailto:leave@weekly.example?subject=leave>, <https://weekly.example/u/12>"
    assert parsed.list_unsubscribe_post == ONE_CLICK
    assert parsed.list_id == "Wöchentlich <weekly.example>"


def test_mime_finds_the_list_fields_behind_a_huge_header_block():
    received = b"".join(b"Received: from relay%d.example by mx.example; Thu, 26 Nov 2026 09:00:00 +0000\r\n" % n
                        for n in range(5000))  # fmt: skip
    parsed = mime.parse_bytes(received + RAW)
    assert "https://weekly.example/u/12" in parsed.list_unsubscribe
    assert parsed.list_unsubscribe_post == ONE_CLICK


@pytest.mark.django_db
def test_ingest_stores_what_the_message_offers(alice):
    message = store_message(make_account(alice), RAW, "u-1")
    message.refresh_from_db()
    assert message.list_unsubscribe == {
        "https": "https://weekly.example/u/12",
        "one_click": True,
        "list": "Wöchentlich",
        "mailto": {"address": "leave@weekly.example", "subject": "leave", "body": "unsubscribe"},
    }
    plain = store_message(make_account(alice, username="other"), RAW.replace(b"List-", b"X-Old-List-"), "u-2")
    plain.refresh_from_db()
    assert plain.list_unsubscribe == {}


@pytest.mark.sqlite
@pytest.mark.django_db
def test_batched_ingest_stores_it_too(alice):
    """Syncs and imports store in batches (COPY on PostgreSQL, bulk inserts on SQLite)."""
    import hashlib
    import os
    from pathlib import Path

    from mailbox import store

    items = []
    for n, raw in enumerate([RAW, RAW.replace(b"List-", b"X-Old-List-")]):
        with store.temp_file() as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        stored = store.commit_raw(
            Path(fh.name), expected_size=len(raw), expected_sha256=hashlib.sha256(raw).hexdigest()
        )
        items.append((f"b-{n}", stored, mime.parse_bytes(raw)))
    listed, plain = store.save_messages(make_account(alice), items)
    listed.refresh_from_db()
    plain.refresh_from_db()
    assert listed.list_unsubscribe["https"] == "https://weekly.example/u/12" and listed.list_unsubscribe["one_click"]
    assert plain.list_unsubscribe == {}
