"""A message's body on the page without a browser (templates/mailbox/_body.html, views_html): the frame's
fold of quoted text, the "…" control, the fit control, right-to-left subjects, names and list rows."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests import html_samples
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

REPLY = (
    '<div dir="ltr">Thanks, see you then.</div><br><div class="gmail_quote">'
    '<div class="gmail_attr">On Mon, Bob wrote:</div>'
    '<blockquote class="gmail_quote">Lunch on Friday?</blockquote></div>'
)


@pytest.fixture
def account(alice):
    return make_account(alice)


def page(client, message, **query) -> str:
    return client.get(reverse("mailbox:message", args=[message.id]), query).content.decode()


def frame(client, message, **query) -> str:
    return client.get(reverse("mailbox:message_body", args=[message.id]), query).content.decode()


def test_the_frame_hides_the_trailing_quotation_unless_asked(alice_client, account):
    message = store_message(account, html_samples.html_message(REPLY, text=None), "r-1")
    folded = frame(alice_client, message)
    assert '<body class="webpop-folded">' in folded
    assert "html > body.webpop-folded > #webpop-message .webpop-fold { display: none !important; }" in folded
    assert re.search(r'<div class="webpop-fold gmail_quote">', folded)
    shown = frame(alice_client, message, quoted="1")
    assert "<body>" in shown and "webpop-folded" not in shown.split("</style>", 1)[1]
    plain = store_message(account, html_samples.html_message("<p>No quote</p>", text=None), "r-2")
    assert "<body>" in frame(alice_client, plain)


def test_the_page_has_a_fold_link_that_works_without_script(alice_client, account):
    markup = '<img src="https://cdn.example/logo.png" alt="Logo" width="80" height="20">' + REPLY
    message = store_message(account, html_samples.html_message(markup, text=None), "r-1")
    html = page(alice_client, message)
    [link] = re.findall(r'<a class="fold-toggle"[^>]*>…</a>', html)
    # Each message's links open its own page (in a conversation, or moved into the reading pane).
    assert f'href="/message/{message.id}/?quoted=1"' in link and 'aria-expanded="false"' in link
    assert 'aria-label="Show quoted text"' in link
    assert f'src="/message/{message.id}/body/"' in html
    shown = page(alice_client, message, quoted="1", images="1")
    [link] = re.findall(r'<a class="fold-toggle"[^>]*>…</a>', shown)
    assert f'href="/message/{message.id}/?images=1"' in link and 'aria-expanded="true"' in link
    assert 'aria-label="Hide quoted text"' in link
    assert f'src="/message/{message.id}/body/?images=1&amp;quoted=1"' in shown
    nothing = store_message(account, html_samples.html_message("<p>No quote</p>", text=None), "r-2")
    assert "fold-toggle" not in page(alice_client, nothing)


def test_the_body_include_carries_the_frame_box_the_fit_control_and_its_script(alice_client, account):
    message = store_message(account, html_samples.message("11_concert_tickets"), "c-1")
    html = page(alice_client, message)
    assert '<div class="mail-body" data-mail-body>' in html
    assert re.search(r'<div class="mail-frame-box">\s*<iframe class="mail-frame"', html)
    fit = r'<button type="button" class="fit-toggle" aria-pressed="true" hidden[^>]*>Fit to width</button>'
    assert re.search(fit, html)
    assert '<script src="/static/js/message.js"></script>' in html
    frame_html = frame(alice_client, message)
    assert "overflow-x: auto" not in frame_html.split("</style>")[0]  # the frame's container never scrolls


def test_subjects_and_names_take_their_own_direction(alice_client, account):
    raw = build_message("مرحبا بكم", "نص", sender="أحمد <ahmed@example.net>")
    message = store_message(account, raw, "ar-1")
    html = page(alice_client, message)
    assert '<h1 dir="auto">مرحبا بكم</h1>' in html
    assert "<dd><bdi>أحمد</bdi> &lt;ahmed@example.net&gt;" in html
    assert '<div class="body plain-body" dir="rtl">' in html
    inbox = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert '<span class="from" dir="auto">أحمد</span>' in inbox
    assert '<span class="subject" dir="auto">مرحبا بكم</span>' in inbox
    assert '<span class="snippet" dir="auto">' in inbox


def test_a_frame_loaded_again_is_laid_out_at_the_width_it_names(alice_client, account):
    message = store_message(account, html_samples.message("11_concert_tickets"), "c-1")
    assert "<style>html { min-width: 616px; }</style></head>" in frame(alice_client, message, width="616")
    for wrong in ("", "abc", "616px", "-616", "99999", "12", "６１６", "616.5"):
        assert "min-width" not in frame(alice_client, message, width=wrong), wrong
