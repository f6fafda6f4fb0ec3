"""In Chromium: Unsubscribe in the message header, the confirmation, the progress and the result, and the
print view (on screen and as printed), at desktop and phone sizes, light and dark, English and German.

Screenshots go to test-artifacts/screens/ (unsubscribe-*.png, print-*.png). The one-click task is not
run by a worker here: the test runs it (``actions.run``) while the page waits, and the page's own
polling (static/js/unsubscribe.js) shows the result.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.browser import session_cookie
from tests.factories import build_message, make_account, store_message
from tests.test_accessibility import _check
from unsubscribe import actions
from unsubscribe.models import UnsubscribeRequest

pytestmark = pytest.mark.django_db(transaction=True)
SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
TIMEOUT_MS = 15_000
SIZES = {"desktop": {"width": 1366, "height": 850}, "phone": {"width": 390, "height": 844}}
WORDS = {
    "en": {"unsubscribe": "Unsubscribe", "done": "Unsubscribed", "working": "Unsubscribing…", "print": "Print"},
    "de": {"unsubscribe": "Abbestellen", "done": "Abbestellt", "working": "Wird abbestellt…", "print": "Drucken"},
}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def newsletter(account, list_server, uidl: str, *, one_click: bool = True, mailto: bool = True) -> object:
    msg = EmailMessage()
    msg["From"] = "The Garden Weekly <letters@garden-weekly.example>"
    msg["To"] = "Alice Example <alice@example.org>"
    msg["Subject"] = "Spring planting: twelve bulbs that never fail"
    msg["Date"] = "Thu, 26 Nov 2026 09:00:00 +0000"
    msg["Message-ID"] = f"<{uidl}@garden-weekly.example>"
    msg["List-Id"] = "The Garden Weekly <weekly.garden-weekly.example>"
    path = f"/unsubscribe/{uidl}"
    list_server.routes[path] = (202, {})
    offers = [f"<{list_server.url(path)}>"]
    if mailto:
        offers.insert(0, "<mailto:leave@garden-weekly.example?subject=leave>")
    msg["List-Unsubscribe"] = ", ".join(offers)
    if one_click:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("Spring planting.\n\nTwelve bulbs that never fail, and how to plant them.")
    msg.add_alternative(
        "<style>.lead { font-size: 18px; color: #2d5a27 } td { padding: 8px }</style>"
        "<table width='600' style='width:600px;border:1px solid #cfd8c6'><tr><td>"
        "<img src='cid:logo@garden-weekly.example' alt='The Garden Weekly' width='40' height='40'>"
        "<h1 class='lead'>Spring planting</h1><p>Twelve bulbs that never fail, and how to plant them: "
        "tulips, daffodils, crocuses, alliums …</p>"
        "<img src='https://images.garden-weekly.example/tulips.jpg' width='560' height='200' alt='Tulips in bloom'>"
        "<p><a href='https://garden-weekly.example/read'>Read online</a></p></td></tr></table>",
        subtype="html",
    )
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@garden-weekly.example>", filename="logo.png")
    msg.add_attachment(b"%PDF-1.4 calendar", maintype="application", subtype="pdf", filename="planting-calendar.pdf")
    return store_message(account, msg.as_bytes(), uidl)


def _fits(page, where: str) -> None:
    widths = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert widths[0] <= widths[1], f"{where}: the page is {widths[0]} px wide in a {widths[1]} px window"


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_unsubscribe_and_print_in_chromium(
    browser_context, live_server, alice, list_server, unsubscribe_enqueued, size, scheme, lang
):
    account = make_account(alice, label="Home")
    message = newsletter(account, list_server, f"{size}-{scheme}-{lang}")
    words = WORDS[lang]
    name = f"{size}-{scheme}-{lang}"
    SCREENS.mkdir(parents=True, exist_ok=True)
    context = browser_context(size, scheme=scheme, locale=lang)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # The header offers it.
        page.goto(f"{live_server.url}/message/{message.id}/", wait_until="load")
        control = page.locator(".unsubscribe-control a")
        assert control.inner_text() == words["unsubscribe"]
        box = control.bounding_box()
        assert box and box["x"] + box["width"] <= SIZES[size]["width"]
        page.screenshot(path=str(SCREENS / f"unsubscribe-message-{name}.png"))

        # The confirmation: nothing has happened yet.
        control.click()
        page.wait_for_url(f"{live_server.url}/unsubscribe/{message.id}/")
        assert "The Garden Weekly" in page.locator("h1").inner_text()
        assert page.locator("h1").inner_text().endswith("?")
        _fits(page, "confirmation")
        page.screenshot(path=str(SCREENS / f"unsubscribe-confirm-{name}.png"), full_page=True)
        assert not UnsubscribeRequest.objects.exists() and list_server.requests == []

        # Confirmed: on its way, then (the task runs) the result, without reloading by hand.
        page.get_by_role("button", name=words["unsubscribe"], exact=True).click()
        page.wait_for_url(f"{live_server.url}/unsubscribe/{message.id}/")
        assert page.locator(".unsubscribe-status strong").inner_text() == words["working"]
        _fits(page, "progress")
        page.screenshot(path=str(SCREENS / f"unsubscribe-working-{name}.png"), full_page=True)
        [request_id] = unsubscribe_enqueued
        assert actions.run(request_id) == "done"
        page.locator(".unsubscribe-status.ok").wait_for()
        assert page.locator(".unsubscribe-status strong").inner_text() == words["done"]
        assert [(r.method, r.body) for r in list_server.requests] == [("POST", b"List-Unsubscribe=One-Click")]
        _fits(page, "result")
        page.screenshot(path=str(SCREENS / f"unsubscribe-done-{name}.png"), full_page=True)

        # The message remembers it.
        page.goto(f"{live_server.url}/message/{message.id}/", wait_until="load")
        assert page.locator(".unsubscribe-control .badge").inner_text() == words["done"]

        # Print: from the message page, on screen and as printed.
        page.get_by_role("link", name=words["print"], exact=True).click()
        page.wait_for_url(f"{live_server.url}/message/{message.id}/print/")
        page.locator("#print-button:not([hidden])").wait_for()
        assert page.locator(".print-html h1.lead").inner_text() == "Spring planting"
        assert page.locator(".print-html img[alt='The Garden Weekly']").evaluate("i => i.naturalWidth") == 1
        assert page.locator(".print-html img[data-webpop-blocked]").count() == 1  # the remote image
        assert "planting-calendar.pdf" in page.locator(".print-attachments").inner_text()
        _fits(page, "print view")
        page.screenshot(path=str(SCREENS / f"print-message-{name}.png"), full_page=True)
        page.emulate_media(media="print")
        assert not page.locator(".print-toolbar").is_visible()
        assert page.locator(".sheet").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 255)"
        page.screenshot(path=str(SCREENS / f"print-message-{name}-printed.png"), full_page=True)
        assert errors == []
    finally:
        context.close()


def test_the_pages_have_no_serious_or_critical_violations(browser, axe, live_server, alice, list_server):
    account = make_account(alice, label="Home")
    fresh = newsletter(account, list_server, "fresh")
    done = newsletter(account, list_server, "done")
    actions.run(actions.start(alice, done.id, "one_click").id)
    refused = newsletter(account, list_server, "refused")
    list_server.routes["/unsubscribe/refused"] = (404, {})
    actions.run(actions.start(alice, refused.id, "one_click").id)
    web_only = newsletter(account, list_server, "web-only", one_click=False, mailto=False)
    reply = store_message(
        account,
        build_message("Re: Spring planting: twelve bulbs that never fail", "Which tulips?",
                      sender="Alice Example <alice@example.org>", message_id="<reply@example.org>"),
        "reply",
    )  # fmt: skip
    assert UnsubscribeRequest.objects.get(message=refused).state == "failed"
    cookie = session_cookie(alice)
    pages = {
        "message-with-unsubscribe": f"/message/{fresh.id}/",
        "unsubscribe-confirm": f"/unsubscribe/{fresh.id}/",
        "unsubscribe-done": f"/unsubscribe/{done.id}/",
        "unsubscribe-refused": f"/unsubscribe/{refused.id}/",
        "unsubscribe-web-page-only": f"/unsubscribe/{web_only.id}/",
        "print": f"/message/{fresh.id}/print/",
        "print-text": f"/message/{fresh.id}/print/?view=text",
        "print-conversation": f"/message/{reply.id}/print/conversation/",
    }
    problems = []
    for page_name, path in pages.items():
        problems += _check(browser, axe, live_server.url + path, page_name, cookie)
    assert problems == [], "axe-core found serious/critical violations:\n" + "\n".join(problems)


def test_a_list_that_offers_only_a_web_page_is_opened_by_the_reader_in_a_new_tab(
    browser_context, live_server, alice, list_server
):
    message = newsletter(make_account(alice), list_server, "web-only", one_click=False, mailto=False)
    context = browser_context("phone")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"{live_server.url}/unsubscribe/{message.id}/", wait_until="load")
        link = page.get_by_role("link", name="Open the unsubscribe page")
        assert link.get_attribute("target") == "_blank"
        assert set(link.get_attribute("rel").split()) == {"noopener", "noreferrer"}
        assert re.search(r"webpop does not open it for you", page.content())
        _fits(page, "web page only")
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "unsubscribe-web-page-only-phone.png"), full_page=True)
        assert list_server.requests == []  # the server fetched nothing
    finally:
        context.close()


@pytest.mark.parametrize(("size", "scheme", "lang"), [("desktop", "dark", "en"), ("phone", "light", "de")])
def test_a_refusal_and_a_printed_conversation(browser_context, live_server, alice, list_server, size, scheme, lang):
    account = make_account(alice, label="Home")
    refused = newsletter(account, list_server, "refused")
    list_server.routes["/unsubscribe/refused"] = (410, {})
    actions.run(actions.start(alice, refused.id, "one_click").id)
    reply = store_message(
        account,
        build_message("Re: Spring planting: twelve bulbs that never fail", "Which tulips flower first?\n\n— Alice",
                      sender="Alice Example <alice@example.org>", message_id="<reply@example.org>"),
        "reply",
    )  # fmt: skip
    from mailbox import threads
    from mailbox.models import Message

    Message.objects.filter(id=reply.id).update(in_reply_to="<refused@garden-weekly.example>")
    threads.assign([Message.objects.get(id=reply.id)])
    context = browser_context(size, scheme=scheme, locale=lang)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    name = f"{size}-{scheme}-{lang}"
    SCREENS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(f"{live_server.url}/unsubscribe/{refused.id}/", wait_until="load")
        assert "HTTP 410 Gone" in page.locator(".unsubscribe-status").inner_text()
        assert page.locator("details.other-ways").get_attribute("open") is not None  # the other ways, at hand
        _fits(page, "refusal")
        page.screenshot(path=str(SCREENS / f"unsubscribe-refused-{name}.png"), full_page=True)

        page.goto(f"{live_server.url}/message/{reply.id}/print/conversation/", wait_until="load")
        assert page.locator("article.print-message").count() == 2
        _fits(page, "printed conversation")
        page.screenshot(path=str(SCREENS / f"print-conversation-{name}.png"), full_page=True)
        page.emulate_media(media="print")
        page.screenshot(path=str(SCREENS / f"print-conversation-{name}-printed.png"), full_page=True)
    finally:
        context.close()
