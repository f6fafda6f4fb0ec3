"""outgoing/richtext.py: the text version of rich mail, text as HTML for the editor, outgoing HTML kept to the
received-mail policy, and the MIME structure of rich messages (outgoing/compose.py)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbox import mime
from outgoing import compose, richtext
from outgoing.compose import Original
from tests.attachment_samples import image

# --- The text version -----------------------------------------------------------------------------


def text_of(markup: str, names: dict | None = None) -> str:
    return richtext.html_to_text(richtext.clean(markup, (names or {}).keys()), names)


def test_lists_are_written_with_their_markers_and_nested_lists_indented():
    markup = "<div>Bring:</div><ul><li>bread</li><li>cheese<ul><li>hard</li><li>soft</li></ul></li></ul><div>and</div>"
    markup += "<ol><li>first</li><li>second<ol><li>inner</li></ol></li><li>third</li></ol>"
    assert text_of(markup) == (
        "Bring:\n\n- bread\n- cheese\n  - hard\n  - soft\n\nand\n\n1. first\n2. second\n   1. inner\n3. third\n"
    )


def test_quotations_are_behind_markers_nested_as_replies_write_them():
    markup = "<div>On Monday, Carol wrote:</div><blockquote>Are you free?<br><br>"
    markup += "<blockquote>Earlier<br>text</blockquote>Yes</blockquote><div>Reply</div>"
    assert text_of(markup) == "On Monday, Carol wrote:\n> Are you free?\n>\n>> Earlier\n>> text\n> Yes\n\nReply\n"
    assert text_of("<blockquote><ul><li>a</li><li>b</li></ul></blockquote>") == "> - a\n> - b\n"


def test_links_keep_their_address_after_the_text_unless_the_text_is_the_address():
    assert text_of('<div>See <a href="https://example.com/menu?a=1&amp;b=2">the menu</a>.</div>') == (
        "See the menu <https://example.com/menu?a=1&b=2>.\n"
    )
    assert text_of('<a href="https://example.com/">https://example.com</a>') == "https://example.com\n"
    assert text_of('<a href="mailto:bob@example.net">bob@example.net</a>') == "bob@example.net\n"
    assert text_of('<a href="mailto:bob@example.net">Bob</a>') == "Bob <mailto:bob@example.net>\n"
    assert text_of('<a href="https://example.com/x"></a>') == "https://example.com/x\n"
    # A link the policy refuses is its text alone.
    assert text_of('<a href="javascript:alert(1)">click</a>') == "click\n"


def test_emphasis_lines_paragraphs_and_preformatted_text():
    assert text_of("<div>Hello <strong>Bob</strong>, <em>really</em> <b> now </b>!</div>") == (
        "Hello *Bob*, really *now* !\n"
    )
    assert text_of("<strong></strong>x") == "x\n"
    assert text_of("<div>a<br>b<br><br>c</div>") == "a\nb\n\nc\n"
    assert text_of("<p>One</p><p>Two</p><h1>Title</h1><div>after</div>") == "One\n\nTwo\n\nTitle\n\nafter\n"
    assert text_of("<pre>  indented\n\tcode  here</pre>") == "  indented\n\tcode  here\n"
    assert text_of("<div>a&nbsp;&nbsp;b &amp; c &lt;d&gt;</div><hr><div>e</div>") == "a  b & c <d>\n\n---\n\ne\n"
    assert text_of("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>") == "a b\nc\n"


def test_the_signature_separator_keeps_its_space_and_pictures_are_named():
    assert text_of("<div>Hi</div><div>--&nbsp;</div><div>Alice</div>") == "Hi\n-- \nAlice\n"
    assert text_of("<div>Hi<br>-- <br>Alice</div>") == "Hi\n-- \nAlice\n"
    assert text_of('<img src="cid:a1@x" alt=""><img src="cid:b2@x">', {"a1@x": "a.png", "b2@x": "b.png"}) == (
        "[a.png][b.png]\n"
    )
    assert text_of('<img src="https://tracker.example/p.gif" alt="Logo">') == "[Logo]\n"


def test_what_is_not_text_is_not_written():
    hostile = "<style>p{color:red}</style><script>alert(1)</script><title>T</title><div>Body</div><!-- note -->"
    assert text_of(hostile) == "Body\n"
    assert richtext.html_to_text("<style>p{color:red}</style>Body") == "Body\n"  # even unclean
    assert richtext.html_to_text("") == "" and text_of("<div><br></div>") == ""


# --- Text as HTML ---------------------------------------------------------------------------------


def test_text_becomes_lines_quotations_and_links_for_the_editor():
    html = richtext.text_to_html("Hi <Bob> & co,\n\nsee https://example.com/a.\n> quoted\n>> deeper\n-- \nAlice\n")
    assert html == (
        "<div>Hi &lt;Bob&gt; &amp; co,<br><br>see "
        '<a href="https://example.com/a">https://example.com/a</a>.</div>'
        "<blockquote><div>quoted</div><blockquote><div>deeper</div></blockquote></blockquote>"
        "<div>--\u00a0<br>Alice</div>"
    )
    assert richtext.text_to_html("a\n\n") == "<div>a</div>"
    assert richtext.text_to_html("") == ""
    assert richtext.text_to_html("  two  spaces") == "<div>\u00a0 two\u00a0 spaces</div>"


@pytest.mark.parametrize(
    "text",
    [
        "Hello\n",
        "Hi Bob,\n\nsee https://example.com/page.\nBye\n",
        "On Monday, Carol wrote:\n> Are you free?\n>\n>> earlier\n> yes\n",
        "Text\n-- \nAlice\nACME Ltd\n",
        "double  spaces and\n  indented lines\n",
    ],
)
def test_text_comes_back_from_its_html_as_it_was(text):
    assert text_of(richtext.text_to_html(text)) == text


lines = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40).map(lambda s: s.strip())
texts = st.lists(st.tuples(st.integers(0, 2), lines), max_size=8).map(
    lambda rows: "".join(">" * depth + (" " if depth and line else "") + line + "\n" for depth, line in rows)
)


@settings(max_examples=150, deadline=None)
@given(texts)
def test_any_text_makes_html_the_policy_keeps_whole(text):
    html = richtext.text_to_html(text)
    assert richtext.clean(html) == richtext.clean(richtext.clean(html))
    # Every word of the text is still there, in order, when written out again.
    words = [w for w in re.split(r"[\s>]+", text.replace("\u00a0", " ")) if w]
    back = [w for w in re.split(r"[\s>]+", text_of(html)) if w]
    assert [w for w in back if w not in ("-", "--")] == [w for w in words if w not in ("-", "--")] or "<" in text


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/=\"' abcdiv ulolibrblockquote&;#x")), max_size=200))
def test_any_markup_gives_text_without_raising(markup):
    assert isinstance(text_of(markup), str)
    assert isinstance(richtext.html_to_text(markup), str)


# --- The HTML sent --------------------------------------------------------------------------------


def test_outgoing_html_is_kept_to_the_received_mail_policy_with_own_pictures_only():
    hostile = (
        '<div class="x" onclick="steal()">Hi<script>alert(1)</script><style>body{display:none}</style></div>'
        '<a href="javascript:alert(1)">j</a><a href="https://ok.example/">ok</a>'
        '<img src="https://tracker.example/p.png" width="1" height="1"><img src="https://remote.example/a.png">'
        '<img src="data:image/png;base64,iVBORw0KGgo="><img src="cid:Mine@Example"><img src="cid:other@x">'
        '<iframe src="https://evil.example/"></iframe><form action="/x"><input name="a"></form>'
    )
    cleaned = richtext.clean(hostile, ["mine@example"])
    assert cleaned.strip() == (
        '<div>Hi</div><a>j</a><a href="https://ok.example/" target="_blank" rel="noopener noreferrer">ok</a>'
        '<img src="cid:Mine@Example">'
    )
    assert richtext.clean(cleaned, ["mine@example"]) == cleaned


def test_a_trailing_quotation_or_signature_is_not_marked_for_folding_in_mail_we_send():
    markup = "<div>Reply</div><blockquote type=cite>old</blockquote><div>-- <br>Alice</div>"
    assert "webpop-fold" not in richtext.clean(markup) and "class" not in richtext.clean(markup)


def test_the_html_part_marks_quotations_as_cited_and_is_a_whole_document():
    part = richtext.document(richtext.clean("<div>a</div><blockquote>b<blockquote>c</blockquote></blockquote>"))
    assert part.startswith("<!DOCTYPE html>\n<html><head>") and part.endswith("</body></html>\n")
    assert part.count(f'<blockquote type="cite" style="{richtext.QUOTE_STYLE}">') == 2
    assert richtext.document("<div>&lt;blockquote&gt;</div>").count("<blockquote") == 0


def test_pictures_swap_between_the_editors_urls_and_content_ids():
    editor = '<div>x<figure><img src="/compose/5/image/7/" width="10"><img src="/compose/5/image/8/"></figure></div>'
    to_cids = richtext.images_to_cids(editor, {"/compose/5/image/7/": "a@b"})
    assert '<img src="cid:a@b" width="10">' in to_cids and 'src="/compose/5/image/8/"' in to_cids
    # An absolute URL of ours names the same picture.
    absolute = richtext.images_to_cids('<img src="http://host/compose/5/image/7/">', {"/compose/5/image/7/": "a@b"})
    assert absolute == '<img src="cid:a@b">'
    cleaned = richtext.clean(to_cids, ["a@b"])
    assert cleaned == '<div>x\n<img src="cid:a@b" width="10"></div>'  # the figure goes, its content stays
    assert richtext.cids_to_images(cleaned, {"a@b": "/compose/5/image/7/"}) == (
        '<div>x\n<img src="/compose/5/image/7/" width="10"></div>'
    )
    assert richtext.cids_to_images('<img src="cid:zzz">', {"a@b": "/x/"}) == '<img src="cid:zzz">'


# --- Rich replies and signatures ----------------------------------------------------------------------


def original(**fields) -> Original:
    values = {
        "from_text": "Carol <carol@example.net>",
        "subject": "Dinner",
        "date": dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC),
        "text": "Are you free?\n> earlier\n",
    }
    values.update(fields)
    return Original(**values)


def test_a_rich_reply_quotes_the_original_behind_its_attribution_with_the_signature_above():
    html = compose.reply_html(original(), "", "Alice\nACME", "above")
    assert html.startswith("<div><br></div><div>--\u00a0</div><div>Alice<br>ACME</div><div><br></div>")
    assert "<div>On Thu, 26 Nov 2026 at 09:00, Carol &lt;carol@example.net&gt; wrote:</div><blockquote>" in html
    assert "<blockquote><div>Are you free?</div><blockquote><div>earlier</div></blockquote></blockquote>" in html
    text = text_of(html)
    assert text == (
        "-- \nAlice\nACME\n\nOn Thu, 26 Nov 2026 at 09:00, Carol <carol@example.net> wrote:\n"
        "> Are you free?\n>> earlier\n"
    )
    below = compose.reply_html(original(), "<div><strong>Alice</strong></div>", "Alice", "below")
    assert below.endswith("</blockquote><div><br></div><div>--\u00a0</div><div><strong>Alice</strong></div>")


def test_a_rich_reply_quotes_the_originals_html_without_what_the_policy_refuses():
    hostile = (
        '<p>Hello <b>there</b></p><script>alert(1)</script><img src="https://tracker.example/p.gif">'
        '<img src="cid:logo@x" alt="Logo"><a href="https://example.com/">site</a>'
    )
    html = compose.reply_html(original(html=hostile, text="Hello there"))
    assert "<p>Hello <b>there</b></p>" in html and "script" not in html and "tracker" not in html
    assert "cid:" not in html and '<img alt="Logo">' in html
    too_big = original(html="<p>" + "x" * compose.MAX_QUOTED_HTML + "</p>", text="short text")
    assert "<blockquote><div>short text</div></blockquote>" in compose.reply_html(too_big)


def test_a_rich_forward_has_the_header_lines_and_the_original_unquoted():
    html = compose.forward_html(original(to_text="Alice <alice@example.org>", text="Are you free?\n"))
    assert "<div>---------- Forwarded message ----------<br>From: Carol &lt;carol@example.net&gt;<br>" in html
    assert "<blockquote>" not in html and "Are you free?" in html


def test_a_rich_signature_written_with_its_own_separator_gets_no_second_one():
    assert compose.signature_html_block("<div>-- <br>Alice</div>", "") == "<div>-- <br>Alice</div>"
    assert compose.signature_html_block("", "-- \nAlice") == "<div>--\u00a0</div><div>Alice</div>"
    assert compose.signature_html_block("<div><br></div>", "") == ""
    assert compose.signature_html_block("", "") == ""


# --- The MIME structure -------------------------------------------------------------------------------


def rich_draft(**overrides) -> compose.Draft:
    fields = {
        "from_name": "Alice Example",
        "from_email": "alice@example.org",
        "to": "Bob <bob@example.net>",
        "cc": "",
        "bcc": "",
        "subject": "Hello",
        "body": "Hi *Bob*.\n",
        "html": "<div>Hi <strong>Bob</strong>.</div>",
    }
    fields.update(overrides)
    return compose.validate(**fields)


def parts(raw: bytes) -> list[str]:
    """The message's tree as "type" lines, indented by depth."""
    message = email.message_from_bytes(raw, policy=email.policy.default)

    def walk(part, depth):
        yield "  " * depth + part.get_content_type()
        if part.is_multipart():
            for child in part.iter_parts():
                yield from walk(child, depth + 1)

    return list(walk(message, 0))


WHEN = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def test_a_rich_message_is_its_text_and_html_as_alternatives():
    raw = compose.build(rich_draft(), message_id="<a@example.org>", date=WHEN)
    assert parts(raw) == ["multipart/alternative", "  text/plain", "  text/html"]
    assert raw.isascii() and max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert raw.count(b"MIME-Version") == 1
    parsed = mime.parse_bytes(raw)
    assert parsed.text_body == "Hi *Bob*.\n" and "<strong>Bob</strong>" in parsed.html_body


def test_pictures_make_the_html_related_and_files_make_it_all_mixed():
    png = image("PNG", (20, 10))
    draft = rich_draft(
        html='<div>Look <img src="cid:pic1@example.org"></div>',
        inline=[("pic1@example.org", "pic.png", "image/png", png)],
        attachments=[("notes.txt", "text/plain", b"notes")],
    )
    raw = compose.build(draft, message_id="<b@example.org>", date=WHEN)
    assert parts(raw) == [
        "multipart/mixed",
        "  multipart/alternative",
        "    text/plain",
        "    multipart/related",
        "      text/html",
        "      image/png",
        "  text/plain",
    ]
    assert raw.count(b"MIME-Version") == 1
    message = email.message_from_bytes(raw, policy=email.policy.default)
    picture = next(p for p in message.walk() if p.get_content_type() == "image/png")
    assert picture["Content-ID"] == "<pic1@example.org>" and picture.get_content_disposition() == "inline"
    assert picture.get_payload(decode=True) == png
    # webpop reading it: the picture is the HTML's own part, the file an attachment.
    parsed = mime.parse_bytes(raw)
    assert {(a.filename, a.inline, a.content_id) for a in parsed.attachments} == {
        ("pic.png", True, "pic1@example.org"),
        ("notes.txt", False, ""),
    }


def test_a_plain_message_stays_one_text_part_and_pictures_need_html():
    assert parts(compose.build(rich_draft(html=""), message_id="<c@example.org>", date=WHEN)) == ["text/plain"]
    draft = rich_draft(html="", inline=[("p@x", "p.png", "image/png", b"\x89PNG")])
    assert draft.inline == []


def test_right_to_left_blocks_keep_their_direction():
    # Trix marks a block of Arabic or Hebrew text dir="rtl"; the recipient's program shows it so.
    markup = '<div dir="rtl">مرحبا بك</div><ul dir="rtl"><li>واحد</li></ul><div>Hello</div>'
    assert richtext.clean(markup) == markup
    assert text_of(markup) == "مرحبا بك\n\n- واحد\n\nHello\n"
