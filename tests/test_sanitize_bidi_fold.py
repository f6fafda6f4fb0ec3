"""The sanitizer and right-to-left mail (dir, align, lang, bdi/bdo) and the fold of an HTML mail's trailing
quotation and signature (mailbox/htmlfold.py)."""

from __future__ import annotations

import re

import pytest

from mailbox import sanitize
from mailbox.htmlfold import FOLD_CLASS
from mailbox.sanitize import clean
from tests import xss_vectors

ARABIC = "مرحبا بكم في النشرة الأسبوعية"
HEBREW = "שלום לכולם"


# --- dir, align, valign: kept with their own values only ---------------------------------------------


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        (f'<p dir="rtl">{ARABIC}</p>', f'<p dir="rtl">{ARABIC}</p>'),
        (f'<div dir="RTL">{HEBREW}</div>', f'<div dir="rtl">{HEBREW}</div>'),
        ('<p dir=" auto ">x</p>', '<p dir="auto">x</p>'),
        (
            '<table><tr><td dir="ltr" align="Right" valign="TOP">x</td></tr></table>',
            '<table><tbody><tr><td dir="ltr" align="right" valign="top">x</td></tr></tbody></table>',
        ),
        ('<p dir="&#114;tl">x</p>', '<p dir="rtl">x</p>'),
        ('<p align="justify">x</p><h1 align="center">y</h1>', '<p align="justify">x</p><h1 align="center">y</h1>'),
        ('<img src="data:image/png;base64,AA==" align="absmiddle" alt="i">', None),
        ('<p dir="rtl; color:red">x</p>', "<p>x</p>"),
        ('<p dir="javascript:alert(1)" align="expression(1)">x</p>', "<p>x</p>"),
        ('<p dir="rtl" dir="ltr">x</p>', '<p dir="rtl">x</p>'),
        ('<p align="middle" valign="center">x</p>', "<p>x</p>"),
        ('<p dir="">x</p><p align="">y</p>', "<p>x</p><p>y</p>"),
    ],
)
def test_dir_align_and_valign_keep_only_their_values(markup, expected):
    out = clean(markup)
    if expected is None:
        assert 'align="absmiddle"' in out
    else:
        assert out == expected
    assert clean(out) == out


def test_bdi_and_bdo_are_kept_for_mixed_direction_text():
    out = clean(f'<p dir="rtl">{ARABIC} <bdi>webpop 2.0</bdi> <bdo dir="ltr">abc</bdo></p>')
    assert out == f'<p dir="rtl">{ARABIC} <bdi>webpop 2.0</bdi> <bdo dir="ltr">abc</bdo></p>'


def test_the_direction_and_language_of_html_and_body_become_the_wrapper():
    out = clean(f'<html dir="rtl" lang="ar"><head><title>t</title></head><body><p>{ARABIC}</p></body></html>')
    assert out == f'<div dir="rtl" lang="ar"><p>{ARABIC}</p></div>'
    # <body> is nearer the text than <html>: its values win; bad values are dropped.
    out = clean('<html dir="ltr" lang="en"><body dir="rtl" lang="he-IL" bgcolor="#fff"><p>x</p>')
    assert out == '<div style="background-color: #fff" dir="rtl" lang="he-IL"><p>x</p></div>'
    assert clean('<body dir="sideways" lang="x&quot; onload=&quot;y"><p>x</p>') == "<p>x</p>"
    assert clean('<body dir="auto" style="direction: rtl"><p>x</p>') == (
        '<div style="direction: rtl" dir="auto"><p>x</p></div>'
    )


def test_the_wrapper_never_clips_or_scrolls_the_message():
    out = clean('<body style="overflow: hidden; color: #333; OVERFLOW-X: scroll !important"><p>x</p>')
    assert out == '<div style="color: #333"><p>x</p></div>'


def test_mixed_arabic_hebrew_and_english_keep_their_structure():
    markup = (
        f'<table dir="rtl" align="right" width="600"><tr><td align="right">{ARABIC}</td>'
        f'<td dir="ltr" align="left">English column</td></tr></table><p dir="rtl">{HEBREW} (v2.1) <b>עכשיו</b></p>'
    )
    out = clean(markup)
    for fragment in [
        'table dir="rtl" align="right" width="600"',
        f'<td align="right">{ARABIC}</td>',
        '<td dir="ltr" align="left">English column</td>',
        f'<p dir="rtl">{HEBREW} (v2.1) <b>עכשיו</b></p>',
    ]:
        assert fragment in out, fragment


def test_a_new_policy_version_re_sanitizes_cached_bodies():
    assert sanitize.VERSION >= 2  # cached bodies from before dir/align checks are sanitized again


# --- Every XSS vector stays blocked with the new attributes and the fold -------------------------------

VECTORS = [v for vectors in xss_vectors.by_class().values() for v in vectors]
ACTIVE = re.compile(r"<(script|svg|math|iframe|object|embed|form|base|meta|link)\b|\son\w+\s*=|javascript:", re.I)


@pytest.mark.parametrize("vector", VECTORS, ids=[v.id for v in VECTORS])
def test_xss_vectors_stay_blocked(vector):
    for markup in (vector.html, f"<p>Hi</p><div class=gmail_quote dir=rtl>{vector.html}</div>"):
        once = clean(markup)
        assert clean(once) == once
        assert not ACTIVE.search(once.replace("&amp;", "&")), once
        assert not re.search(r'\sdir="(?!(?:ltr|rtl|auto)")', once)
        assert not re.search(r'\s(?:v)?align="(?!(?:left|right|center|justify|top|middle|bottom|baseline)")', once)


# --- The fold ------------------------------------------------------------------------------------------


def folded(markup: str) -> list[str]:
    """The texts hidden when folded (elements with the fold class), in order."""
    out = clean(markup)
    assert clean(out) == out  # idempotent, whatever was marked or wrapped
    result = sanitize.sanitize(markup)
    assert result.folded == (FOLD_CLASS in out) == result.meta()["folded"]
    hidden = re.findall(rf'<(\w+)[^>]* class="{FOLD_CLASS}[^"]*"[^>]*>(.*?)</\1>', out, re.S)
    return [re.sub(r"<[^>]+>", "", inner) for _tag, inner in hidden]


def test_a_gmail_reply_folds_its_quotation_and_signature():
    markup = (
        '<div dir="ltr">Thanks, see you then.<br clear="all"><div><br></div>'
        '<span class="gmail_signature_prefix">-- </span>'
        '<br><div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature">Alice</div></div><br>'
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Bob wrote:<br></div>'
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">Lunch?</blockquote></div>'
    )
    out = clean(markup)
    assert "Thanks, see you then." in out.split(FOLD_CLASS)[0]
    assert re.search(rf'<div dir="ltr" class="{FOLD_CLASS} gmail_signature">Alice</div>', out)
    assert re.search(rf'<div class="{FOLD_CLASS} gmail_quote">', out)
    assert folded(markup)[-1].startswith("On Mon, Bob wrote:")


def test_apple_and_thunderbird_quotations_fold_with_their_attribution():
    apple = '<div>Yes.</div><div><br><blockquote type="cite"><div>On 23 Nov, Bob wrote:</div></blockquote></div>'
    assert folded(apple) == ["On 23 Nov, Bob wrote:"]
    apple_attr = (
        '<div>Yes.</div><div>On 23 Nov 2026, at 09:00, Bob wrote:</div><br><blockquote type="cite">Lunch?</blockquote>'
    )
    assert folded(apple_attr) == ["On 23 Nov 2026, at 09:00, Bob wrote:", "Lunch?"]
    thunderbird = (
        '<p>Yes.</p><div class="moz-cite-prefix">On 23.11.26 09:00, Bob wrote:<br></div>'
        '<blockquote type="cite" cite="mid:x@y">Lunch?</blockquote>'
        '<pre class="moz-signature" cols="72">-- \nAlice</pre>'
    )
    assert folded(thunderbird) == ["On 23.11.26 09:00, Bob wrote:", "Lunch?", "-- \nAlice"]


def test_outlook_folds_everything_after_its_reply_marker():
    markup = (
        '<div>Fine by me.</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> Bob</div>'
        "loose quoted text<div>Lunch?</div>"
    )
    out = clean(markup)
    assert out.startswith("<div>Fine by me.</div>")
    assert f'<span class="{FOLD_CLASS}">loose quoted text</span>' in out
    assert f'<div class="{FOLD_CLASS}">Lunch?</div>' in out and 'id="' not in out


def test_a_signature_separator_folds_what_follows():
    inline = "<div>Thanks!<br>-- <br>Alice Example<br>Example Corp</div>"
    assert folded(inline) == ["-- ", "Alice Example", "Example Corp"]
    assert "Thanks!<br>" in clean(inline)
    block = "<p>Thanks!</p><div>--&nbsp;</div><div>Alice</div>"
    assert folded(block) == ["--&nbsp;", "Alice"]


def test_quotations_that_are_not_trailing_stay_visible():
    interleaved = '<p>Hi</p><blockquote type="cite">Lunch?</blockquote><p>Yes, at one.</p>'
    assert folded(interleaved) == []
    pull_quote = "<p>News</p><blockquote>A newsletter's pull quote</blockquote>"
    assert folded(pull_quote) == []
    only_quote = '<blockquote type="cite">A forwarded text</blockquote><div class="gmail_quote">more</div>'
    assert folded(only_quote) == []
    inside_quote = '<p>Hi</p><blockquote type="cite">q<div>-- </div>sig</blockquote><p>answer</p>'
    assert folded(inside_quote) == []


def test_tables_keep_their_structure_when_their_rest_is_folded():
    markup = (
        "<table><tr><td>Reply text</td></tr><tr><td><div class=gmail_quote>old</div></td></tr>"
        "<tr><td> </td></tr></table>"
    )
    out = clean(markup)
    assert "<span" not in out
    assert f'<tr class="{FOLD_CLASS}"><td> </td></tr>' in out
    assert f'<div class="{FOLD_CLASS} gmail_quote">old</div>' in out
