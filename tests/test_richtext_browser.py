"""Rich text in Chromium: write a message with bold, a list, a link, a quotation and a picture in the editor (Trix),
send it to the SMTP server, and read what arrived: a text/plain part with the list markers, the "> " quotation and
"text <url>", and an HTML part that webpop's own message view shows with the same formatting. Switching a message
between rich and plain text and back; a rich signature; every page at 1366x850 and 390x844, light and dark, English
and German (screenshots in test-artifacts/screens/richtext-*.png), axe clean, nothing wider than a phone, and no
script or console error (a Content-Security-Policy refusal is one) anywhere.

No worker runs here: the send task runs in the web process when the web enqueues it.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import re
from pathlib import Path

import pytest
from django.utils import translation

from accounts.models import Profile
from mailbox.models import Folder, Message
from outgoing import identities, send, tasks
from outgoing.models import Identity, OutgoingMessage, OutgoingState
from tests.attachment_samples import image
from tests.factories import build_message, make_account, store_message
from tests.test_message_body_browser import settled_frame
from tests.test_snooze_browser import DESKTOP, PHONE, TIMEOUT_MS, _axe_problems
from webpop.security import TRIX_STYLE_HASHES

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
pytestmark = pytest.mark.django_db(transaction=True)
EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"  # Trix inserts its style blocks empty
STYLE_TEXTS = "() => [...document.querySelectorAll('style[data-tag-name]')].map(s => s.textContent)"
# Trix applies keys on the next frames: wait for two before the next key depends on the last.
DOCUMENT_TEXT = "() => document.querySelector('trix-editor').editor.getDocument().toString()"
TYPED = """(typed) => { const editor = document.querySelector('trix-editor').editor;
  const [start, end] = editor.getSelectedRange();
  return start === end && editor.getDocument().toString().slice(0, start).endsWith(typed); }"""
FRAMES = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def _shot(page, name: str) -> None:
    # caret="initial": Playwright's hidden caret is a style on the focused editor, which Trix copies into its
    # serialized HTML, and the CSP (rightly) refuses the copy.
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"richtext-{name}.png"), full_page=True, caret="initial")


def _page(context, problems: list[str]):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text} ({page.url})"))
    return page


def _editor_html(page) -> str:
    return page.locator("#id_body_html").input_value()


def _keys(page, *keys: str) -> None:
    for key in keys:
        page.keyboard.press(key)
        page.evaluate(FRAMES)


def _type(page, text: str) -> None:
    """Type into the editor, then wait until its document has the text with the cursor after it (Trix takes
    input on later frames), and for its render."""
    page.keyboard.type(text)
    page.wait_for_function(TYPED, arg=text)
    page.evaluate(FRAMES)


def _wait_for_editor(page) -> None:
    page.locator("trix-editor").wait_for()
    page.wait_for_function("() => document.querySelector('trix-editor').editor !== undefined")


def test_a_rich_message_arrives_with_its_text_version_and_reads_the_same_in_webpop(
    browser_context, live_server, alice, smtp_account, smtp_server, monkeypatch
):
    account = smtp_account()
    Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 0})  # rich: the default
    monkeypatch.setattr(tasks.send_outgoing, "delay", lambda outgoing_id: tasks.send_outgoing.apply(args=[outgoing_id]))
    problems: list[str] = []
    context = browser_context(DESKTOP)
    try:
        page = _page(context, problems)
        page.goto(f"{live_server.url}/compose/")
        _wait_for_editor(page)
        assert page.locator("#id_body").is_hidden() and page.locator("#id_format").input_value() == "rich"
        assert page.get_by_role("button", name="Rich text").get_attribute("aria-pressed") == "true"
        # Trix's own style blocks are the ones the policy allows by hash (renew TRIX_STYLE_HASHES if not).
        hashes = sorted(
            "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
            for text in page.evaluate(STYLE_TEXTS)
        )
        assert sorted([*hashes, EMPTY_STYLE]) == sorted(TRIX_STYLE_HASHES)

        page.locator("#id_to").fill("Bob <bob@example.net>")
        page.locator("#id_subject").fill("Friday")
        editor = page.locator("trix-editor")
        editor.click()
        editor.press("Control+Home")
        _type(page, "Hello ")
        bold = page.get_by_role("button", name="Bold", exact=True)
        bold.click()
        _type(page, "Bob")
        assert bold.get_attribute("aria-pressed") == "true"  # screen readers hear it is on
        bold.click()
        _type(page, ", please bring:")
        _keys(page, "Enter")
        page.get_by_role("button", name="Bulleted list").click()
        _type(page, "bread")
        _keys(page, "Enter")
        _type(page, "cheese")
        _keys(page, "Enter", "Enter")  # out of the list
        _type(page, "The menu is on our site.")
        # The link: "our site" selected with the keyboard, then the toolbar's link dialog.
        _keys(page, "ArrowLeft", *["Shift+ArrowLeft"] * len("our site"))
        page.get_by_role("button", name="Link", exact=True).click()
        page.locator("input[name=href]").fill("https://example.com/menu")
        page.locator("input[name=href]").press("Enter")
        page.evaluate(FRAMES)
        _keys(page, "End", "Enter")
        page.get_by_role("button", name="Quote", exact=True).click()
        _type(page, "Cheese is not optional.")
        _keys(page, "Enter", "Enter")  # out of the quotation
        _type(page, "See you at eight.")
        _keys(page, "Enter")
        # A picture, through the toolbar's file chooser: stored with the draft (saved first: it is new).
        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="Insert a picture").click()
        chooser.value.set_files(
            files=[{"name": "table.png", "mimeType": "image/png", "buffer": image("PNG", (160, 90))}]
        )
        page.wait_for_function(
            "() => /\\/compose\\/\\d+\\/image\\/\\d+\\//.test(document.getElementById('id_body_html').value)"
        )
        page.locator("trix-editor figure img").wait_for()
        page.wait_for_function("() => document.querySelector('trix-editor figure img').naturalWidth === 160")
        html = _editor_html(page)
        assert "<strong>Bob</strong>" in html and "<ul><li>bread</li><li>cheese</li></ul>" in html
        assert '<a href="https://example.com/menu">our site</a>' in html and "<blockquote>" in html
        _shot(page, "journey-compose")

        page.get_by_role("button", name="Send").click()
        page.wait_for_url(f"{live_server.url}/folder/sent/")
        [got] = smtp_server.received
        mail = email.message_from_bytes(got.data, policy=email.policy.default)
        assert mail.get_content_type() == "multipart/alternative"
        plain, related = mail.get_payload()
        assert plain.get_content_type() == "text/plain" and related.get_content_type() == "multipart/related"
        html_part, picture = related.get_payload()
        assert html_part.get_content_type() == "text/html" and picture.get_content_type() == "image/png"
        assert picture.get_payload(decode=True) == image("PNG", (160, 90))
        cid = picture["Content-ID"].strip("<>")
        sent_html = html_part.get_content()
        assert f'src="cid:{cid}"' in sent_html and "/compose/" not in sent_html
        text = plain.get_content().replace("\r\n", "\n")
        assert "Hello *Bob*, please bring:\n\n- bread\n- cheese\n" in text
        assert "The menu is on our site <https://example.com/menu>." in text
        assert "\n> Cheese is not optional.\n" in text
        assert "See you at eight.\n" in text and "[table.png]" in text

        # What arrived, read in webpop: the same formatting, the picture shown from the message itself.
        received = store_message(account, got.data, "received-rich-1")
        page.goto(f"{live_server.url}/message/{received.id}/")
        frame = settled_frame(page)
        assert frame.locator("strong").inner_text() == "Bob"
        assert frame.locator("ul > li").all_inner_texts() == ["bread", "cheese"]
        assert frame.locator('a[href="https://example.com/menu"]').inner_text() == "our site"
        assert frame.locator("blockquote").inner_text().strip() == "Cheese is not optional."
        frame.wait_for_function("() => document.querySelector('img').naturalWidth === 160")
        _shot(page, "journey-received")
        sent = Message.objects.get(folder=Folder.SENT)
        assert OutgoingMessage.objects.get().state == OutgoingState.SENT and sent.subject == "Friday"
    finally:
        context.close()
    assert problems == []


def test_a_message_switches_between_rich_and_plain_text_and_a_preference_starts_plain(
    browser_context, live_server, alice, smtp_account
):
    smtp_account()
    problems: list[str] = []
    context = browser_context(DESKTOP)
    try:
        page = _page(context, problems)
        page.goto(f"{live_server.url}/compose/")
        _wait_for_editor(page)
        page.locator("#id_to").fill("bob@example.net")
        page.locator("trix-editor").click()
        _type(page, "Shopping:")
        _keys(page, "Enter")
        # By keyboard: the toolbar is one tab stop before the text; arrows move in it, Enter acts.
        _keys(page, "Shift+Tab")
        assert page.evaluate("() => document.activeElement.title") == "Bold"
        _keys(page, *["ArrowRight"] * 5)
        assert page.evaluate("() => document.activeElement.title") == "Numbered list"
        _keys(page, "Enter")  # and the text has the focus again
        assert page.evaluate("() => document.activeElement.tagName") == "TRIX-EDITOR"
        _type(page, "apples")
        page.keyboard.press("Enter")
        _type(page, "pears")
        page.get_by_role("button", name="Plain text").click()
        body = page.locator("#id_body")
        body.wait_for()
        assert page.locator("trix-editor").is_hidden() and page.locator("#id_format").input_value() == "plain"
        assert body.input_value().startswith("Shopping:\n\n1. apples\n2. pears\n")
        body.press("Control+End")
        body.type("\n> quoted line\nhttps://example.com/x")
        page.get_by_role("button", name="Rich text").click()
        page.locator("trix-editor").wait_for()
        page.wait_for_function("() => document.getElementById('id_format').value === 'rich'")
        html = _editor_html(page)
        assert "<blockquote>quoted line</blockquote>" in html
        assert '<a href="https://example.com/x">https://example.com/x</a>' in html
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_url(re.compile(r"/compose/\d+/$"))
        draft = OutgoingMessage.objects.get(owner=alice)
        assert "<blockquote>" in draft.body_html and "> quoted line" in draft.body

        # Plain text by preference: the text field, the editor one click away.
        Profile.objects.update_or_create(user=alice, defaults={"compose_format": "plain"})
        page.goto(f"{live_server.url}/compose/")
        page.locator("#id_body").wait_for()
        assert page.locator("trix-editor").is_hidden()
        assert page.get_by_role("button", name="Plain text").get_attribute("aria-pressed") == "true"
    finally:
        context.close()
    assert problems == []


def test_rich_text_is_saved_while_typing_and_the_senders_signature_follows_the_from_choice(
    browser_context, live_server, alice, smtp_account
):
    home = smtp_account(signature="Alice at home")
    work = smtp_account(
        make_account(alice, username="alice@work.example"), from_email="alice@work.example", signature="Alice\nACME Ltd"
    )
    problems: list[str] = []
    context = browser_context(DESKTOP)
    try:
        page = _page(context, problems)
        page.goto(f"{live_server.url}/compose/?account={home.id}")
        _wait_for_editor(page)
        assert page.evaluate(DOCUMENT_TEXT) == "\n-- \nAlice at home\n"
        page.locator("trix-editor").click()
        _keys(page, "Control+Home")
        _type(page, "Hello")
        page.locator("#id_identity").select_option(str(work.identities.get(is_default=True).id))
        page.evaluate(FRAMES)
        assert page.evaluate(DOCUMENT_TEXT) == "Hello\n-- \nAlice\nACME Ltd\n"
        # Saved within the autosave interval (5 s); the page's address becomes the draft's own.
        page.wait_for_url(re.compile(r"/compose/\d+/$"))
        draft = OutgoingMessage.objects.get(owner=alice, state=OutgoingState.DRAFT)
        assert draft.account_id == work.id and "Hello" in draft.body_html and "ACME Ltd" in draft.body_html
        assert draft.body == "Hello\n-- \nAlice\nACME Ltd\n"
    finally:
        context.close()
    assert problems == []


# As Google Docs puts a paragraph, a list and a picture on the clipboard (shortened).
DOCS_CLIPBOARD = (
    '<meta charset="utf-8"><b style="font-weight:normal;" id="docs-internal-guid-1">'
    '<p dir="ltr" style="line-height:1.38;margin-top:0pt" class="c1"><span style="font-size:11pt;font-family:Arial;'
    'color:#000000;font-weight:700">Bold part</span><span style="font-size:11pt;font-style:italic">, italic</span>'
    '<span style="font-size:11pt">, plain</span></p><ul><li style="list-style-type:disc"><span>one</span></li></ul>'
    '<img src="https://lh3.googleusercontent.example/picture.png" width="100"><style>body { display: none }</style></b>'
)


def test_html_pasted_from_another_program_keeps_only_the_editors_formatting(
    browser_context, live_server, alice, smtp_account
):
    smtp_account()
    problems: list[str] = []
    context = browser_context(DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    try:
        page = _page(context, problems)
        page.goto(f"{live_server.url}/compose/")
        _wait_for_editor(page)
        page.locator("trix-editor").click()
        page.evaluate(
            """async (html) => navigator.clipboard.write([new ClipboardItem({
                 'text/html': new Blob([html], {type: 'text/html'}),
                 'text/plain': new Blob(['Bold part, italic, plain'], {type: 'text/plain'})})])""",
            DOCS_CLIPBOARD,
        )
        problems.clear()  # the browser's own clean-up of what the test put on the clipboard reports its styles
        _keys(page, "Control+v")
        page.wait_for_function("() => document.getElementById('id_body_html').value.includes('one')")
        html = _editor_html(page)
        # Bold and italic as the styles said (not all bold, as the <b> around everything would have it).
        assert "Bold part</strong><em>, italic</em>, plain" in html and html.count("<strong>") == 1
        assert "<li>one</li>" in html
        assert "style" not in html and "googleusercontent" not in html and "c1" not in html
        assert page.locator("body").is_visible()
    finally:
        context.close()
    assert problems == []


def _reply_in_rich_text(alice, account) -> OutgoingMessage:
    original = store_message(
        account,
        build_message("Dinner on Saturday?", "Are you free?\nBring Dan.", sender="Carol <carol@example.net>"),
        "u-dinner",
    )
    return send.start_reply(alice, original, OutgoingMessage.Kind.REPLY)


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_editor_pages_fit_read_and_are_shot(browser_context, live_server, axe, alice, smtp_account, scheme, locale):
    account = smtp_account()
    main = identities.of_user(alice)[0]
    identities.save(
        alice,
        account,
        main,
        {
            "address": main.address,
            "name": "Alice Example",
            "signature": "",
            "signature_html": "<div><strong>Alice</strong> · <a href='https://alice.example'>alice.example</a></div>",
            "signature_format": "rich",
        },
    )
    with translation.override(locale[:2]):  # as the reply button would, in the page's language
        draft = _reply_in_rich_text(alice, account)
    assert "<blockquote>" in draft.body_html and "<strong>Alice</strong>" in draft.body_html
    lang = locale[:2]
    pages = {
        "reply": f"/compose/{draft.id}/",
        "new": "/compose/",
        "signature": f"/compose/settings/{account.id}/addresses/{main.id}/",
    }
    problems: list[str] = []
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser_context(viewport, scheme, locale)
        try:
            page = _page(context, problems)
            for name, path in pages.items():
                tag = f"{name}-{size}-{scheme}-{lang}"
                page.goto(f"{live_server.url}{path}")
                _wait_for_editor(page)
                if name == "reply":
                    assert "Are you free?" in page.locator("trix-editor blockquote").inner_text()
                if name == "signature":
                    assert page.locator("trix-editor strong").inner_text() == "Alice"
                wide = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
                if wide[0] > wide[1]:
                    problems.append(f"{tag}: {wide[0]}px wide in a {wide[1]}px window")
                if size == "desktop":
                    problems += _axe_problems(axe, page, tag)
                _shot(page, tag)
        finally:
            context.close()
    assert problems == []
    assert Identity.objects.get(id=main.id).signature == "*Alice* · alice.example <https://alice.example>"
