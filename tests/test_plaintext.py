"""Plain-text bodies for reading (mailbox/plaintext.py, templates/mailbox/_plain.html): paragraphs,
format=flowed, links, quotations, the signature and trailing quotation folded, right-to-left text."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from mailbox import mime, plaintext
from mailbox.plaintext import Paragraph, Piece, Quote
from tests.factories import build_message, make_account, store_message


def texts(items) -> list:
    """The items as plain data: a paragraph's text, or a list for a quotation."""
    return [texts(i.items) if isinstance(i, Quote) else "".join(p.text for p in i.pieces) for i in items]


# --- Paragraphs and quotations -----------------------------------------------------------------


def test_paragraphs_are_runs_of_lines_between_blank_lines():
    body = plaintext.parse("Hi Bob,\n\nline one\nline two\n\n\n\nBye")
    assert texts(body.items) == ["Hi Bob,", "line one\nline two", "Bye"]
    assert body.folded == []


def test_quotations_nest_by_their_markers_and_keep_paragraph_breaks():
    body = plaintext.parse("Reply.\n\n> one\n> two\n>\n> three\n>> deeper\n> > also deeper\n> back\n\nMore reply.")
    assert texts(body.items) == [
        "Reply.",
        ["one\ntwo", "three", ["deeper\nalso deeper"], "back"],
        "More reply.",
    ]


def test_very_deep_quotation_is_shown_at_the_deepest_level_kept():
    body = plaintext.parse("Top\n\n" + ">" * 40 + " bottom\n\nReply")
    depth, item = 0, body.items[1]
    while isinstance(item, Quote):
        depth, item = depth + 1, item.items[0]
    assert depth == plaintext.MAX_DEPTH and texts([item]) == ["bottom"]


def test_a_huge_text_is_shown_as_it_is(monkeypatch):
    monkeypatch.setattr(plaintext, "MAX_BLOCKS", 10)
    text = "\n\n".join(f"para {i} https://example.com/{i}" for i in range(50))
    body = plaintext.parse(text)
    assert texts(body.items) == [text] and body.items[0].pieces == [Piece(text)]
    huge = "x " * (plaintext.MAX_CHARS // 2 + 1)
    assert plaintext.parse(huge).items[0].pieces == [Piece(huge.rstrip())]


# --- Links ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ("see https://example.com/a?b=1&c=2#top.", ["https://example.com/a?b=1&c=2#top"]),
        ("(http://example.com/wiki/Foo_(bar)) and", ["http://example.com/wiki/Foo_(bar)"]),
        ("<https://example.com/x>, then", ["https://example.com/x"]),
        ("write to mailto:bob@example.org!", ["mailto:bob@example.org"]),
        ('"https://example.com/q"onmouseover=alert(1)', ["https://example.com/q"]),
        ("https://example.com/\u202eevil\u202c", ["https://example.com/"]),
        ("https://exa\u200bmple.com", ["https://exa"]),
        ("javascript:alert(1) data:text/html,x ftp://example.com file:///etc/passwd", []),
        ("vbscript:x xhttps://example.com https:// http:/example.com mailto:nobody", []),
        ("JAVASCRIPT://example.com/%0Aalert(1)", []),
    ],
)
def test_only_http_https_and_mailto_become_links(text, links):
    pieces = plaintext.links(text)
    assert [p.href for p in pieces if p.href] == links
    assert "".join(p.text for p in pieces) == text  # nothing lost, nothing added
    assert all(p.href == p.text for p in pieces if p.href)


# --- The fold: signature and trailing quotation ----------------------------------------------------


def test_the_signature_is_folded():
    body = plaintext.parse("Thanks!\n\n-- \nAlice Example\nExample Corp")
    assert texts(body.items) == ["Thanks!"]
    assert texts(body.folded) == ["-- \nAlice Example\nExample Corp"]


def test_a_trailing_quotation_folds_with_its_attribution():
    text = "Sounds good.\n\nOn Mon, 23 Nov 2026 at 09:00, Bob <bob@example.org> wrote:\n> Lunch on Friday?\n>\n> Bob\n"
    body = plaintext.parse(text)
    assert texts(body.items) == ["Sounds good."]
    attribution = "On Mon, 23 Nov 2026 at 09:00, Bob <bob@example.org> wrote:"
    assert texts(body.folded) == [attribution, ["Lunch on Friday?", "Bob"]]


def test_an_attribution_wrapped_over_two_lines_folds_whole():
    text = "Yes.\n\nOn Mon, 23 Nov 2026 at 09:00, Bob Example\n<bob@example.org> wrote:\n\n> Lunch?"
    body = plaintext.parse(text)
    assert texts(body.items) == ["Yes."]
    assert texts(body.folded)[0] == "On Mon, 23 Nov 2026 at 09:00, Bob Example\n<bob@example.org> wrote:"


def test_a_quotation_followed_only_by_the_signature_folds_with_it():
    body = plaintext.parse("Yes.\n\nBob wrote:\n> Lunch?\n\n-- \nAlice")
    assert texts(body.items) == ["Yes."]
    assert texts(body.folded) == ["Bob wrote:", ["Lunch?"], "-- \nAlice"]


def test_a_top_posted_reply_folds_from_the_signature():
    body = plaintext.parse("Yes.\n-- \nAlice\n\nOn Mon, Bob wrote:\n> Lunch?")
    assert texts(body.items) == ["Yes."]
    assert texts(body.folded) == ["-- \nAlice", "On Mon, Bob wrote:", ["Lunch?"]]


def test_an_interleaved_reply_keeps_its_quotations():
    body = plaintext.parse("> Lunch on Friday?\nYes.\n> At noon?\nBetter at one.")
    assert body.folded == []
    assert texts(body.items) == [["Lunch on Friday?"], "Yes.", ["At noon?"], "Better at one."]


def test_a_message_that_is_all_quotation_is_shown_whole():
    body = plaintext.parse("> forwarded\n> text\n-- \n> sig in the quote")
    assert body.folded == [] and texts(body.items) == [["forwarded\ntext"], "-- ", ["sig in the quote"]]
    assert plaintext.parse("-- \nonly a signature").folded == []


def test_an_outlook_original_message_block_is_folded():
    text = "Fine by me.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\n\nLunch?"
    assert texts(plaintext.parse(text).folded) == ["-----Original Message-----\nFrom: Bob\nSent: Monday", "Lunch?"]
    ruled = "Fine.\n\n" + "_" * 32 + "\nVon: Bob\nGesendet: Montag\n\nMittag?"
    assert texts(plaintext.parse(ruled).items) == ["Fine."]
    assert plaintext.parse("Text\n" + "_" * 32 + "\nnot a header").folded == []


# --- format=flowed (joined at parse time) ------------------------------------------------------------


def test_flowed_paragraphs_arrive_as_one_line_each():
    raw = (
        b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
        b"This paragraph was wrapped by the sender's \r\nprogram at seventy-two columns and \r\n"
        b"must read as one line.\r\n\r\n> A quoted flowed \r\n> paragraph.\r\n"
    )
    body = plaintext.parse(mime.parse_bytes(raw).text_body)
    assert texts(body.items) == [
        "This paragraph was wrapped by the sender's program at seventy-two columns and must read as one line."
    ]
    assert texts(body.folded) == [["A quoted flowed paragraph."]]


def test_delsp_joins_without_the_soft_break_space():
    raw = b"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n\r\nKonstantinopel \r\nstrasse\r\n"
    assert mime.parse_bytes(raw).text_body == "Konstantinopelstrasse\n"


def test_the_signature_separator_never_joins_a_flowed_paragraph():
    raw = b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\nSee you \r\n-- \r\nAlice\r\n"
    text = mime.parse_bytes(raw).text_body
    assert text == "See you \n-- \nAlice\n"
    assert texts(plaintext.parse(text).folded) == ["-- \nAlice"]


# --- Direction -------------------------------------------------------------------------------------


def test_direction_is_the_first_strong_letters():
    assert plaintext.direction("  123 مرحبا hello") == "rtl"
    assert plaintext.direction("(שלום)") == "rtl"
    assert plaintext.direction("1. hello مرحبا") == "ltr"
    assert plaintext.direction("123 !?") == "auto"
    body = plaintext.parse("مرحبا\n\n> hello\n> مرحبا\n\nنعم\n\n> שלום")
    assert body.direction == "rtl"
    assert [q.direction for q in body.items + body.folded if isinstance(q, Quote)] == ["ltr", "rtl"]


# --- On the page ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_prints_paragraphs_links_and_the_fold_escaped(alice_client, alice):
    text = (
        "Hi <b>Bob</b> & co,\n\nsee https://example.com/?a=1&b=<2> or javascript:alert(1)\n\n"
        "مرحبا بالعالم\n\nOn Mon, Bob wrote:\n> <script>alert(1)</script>\n"
    )
    message = store_message(make_account(alice), build_message("Plain", text), "p-1")
    html = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    body = html.split('<div class="body plain-body" dir="ltr">', 1)[1]
    assert '<p dir="auto">Hi &lt;b&gt;Bob&lt;/b&gt; &amp; co,</p>' in body
    assert (
        '<a href="https://example.com/?a=1&amp;b=" rel="noopener noreferrer nofollow" target="_blank">'
        "https://example.com/?a=1&amp;b=</a>&lt;2&gt; or javascript:alert(1)</p>"
    ) in body
    assert len(re.findall(r"<a ", body.split("</div>")[0])) == 1
    assert '<p dir="auto">مرحبا بالعالم</p>' in body
    fold = re.search(r'<div class="plain-fold" id="fold-(\d+)">(.*?)</div>', body, re.S)
    assert fold and fold.group(1) == str(message.id)
    assert "On Mon, Bob wrote:" in fold.group(2) and "&lt;script&gt;alert(1)&lt;/script&gt;" in fold.group(2)
    assert '<blockquote class="plain-quote" dir="ltr">' in fold.group(2)
    toggle = re.search(r'<button type="button" class="fold-toggle" hidden [^>]*>…</button>', body).group()
    assert f'aria-controls="fold-{message.id}"' in toggle and 'aria-label="Hide quoted text"' in toggle
    assert "<script>" not in body


def test_pieces_and_paragraphs_are_plain_data():
    body = plaintext.parse("a https://example.com b")
    assert body.items == [Paragraph([Piece("a "), Piece("https://example.com", "https://example.com"), Piece(" b")])]
