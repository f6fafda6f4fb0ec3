"""Attachments in real Chromium: thumbnails → lightbox → next → close → PDF preview → back, and the other previews.

Each journey runs at desktop (1366×850) and phone (390×844) size, in the light and dark colour
scheme, in English and German; screenshots go to test-artifacts/screens/attachments-*.png. On
every page the phone layout must not scroll sideways, no script error or CSP refusal may occur,
and axe-core finds no serious or critical violation (lightbox open included).
"""

from __future__ import annotations

import http.server
import re
import threading
import urllib.request
from pathlib import Path

import pytest

from tests import attachment_samples as samples
from tests.factories import make_account, store_message
from tests.test_accessibility import AXE_OPTIONS, _describe

pytestmark = pytest.mark.django_db(transaction=True)
SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
TIMEOUT_MS = 20_000


@pytest.fixture
def mail(alice):
    account = make_account(alice, label="Home")
    raw = samples.message_with(
        [
            ("garden.jpg", "image/jpeg", samples.image("JPEG", (1200, 800), quality=85)),
            ("terrace.png", "image/png", samples.image("PNG", (800, 600))),
            ("sunset.webp", "image/webp", samples.image("WEBP", (900, 600))),
            ("plan.pdf", "application/pdf", samples.pdf(["The plan, page one", "Page two"])),
            ("figures.csv", "text/csv", b"Month;Visitors;Sales\nJanuary;1200;34\nFebruary;1350;41\nMarch;990;28\n"),
            ("meeting.ics", "text/calendar", samples.ICS.encode()),
            ("notes.txt", "text/plain", "Notes\n\nBring the keys. \u00dcbermorgen <b>not bold</b>\n".encode()),
            ("budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK\x03\x04" * 300),
        ],
        subject="Photos from the garden, and the plan",
    )
    message = store_message(account, raw, "u-attach")
    return message


class Watch:
    """Script errors and console errors (a CSP refusal is one) on a page."""

    def __init__(self, page):
        self.problems: list[str] = []
        page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(f"console: {msg.text}"))


def _fits(page, where: str) -> None:
    scroll, inner = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert scroll <= inner, f"{where}: the page scrolls sideways ({scroll} > {inner})"


def _shoot(page, name: str, full_page: bool = True) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"attachments-{name}.png"), full_page=full_page)


def _canvas_has_ink(page, selector: str) -> bool:
    """True when the canvas holds dark pixels (text) and coloured ones (the red band), not just white."""
    return page.evaluate(
        """(selector) => {
          const canvas = document.querySelector(selector);
          const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
          let dark = 0, red = 0;
          for (let i = 0; i < data.length; i += 4 * 7) {
            const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
            if (r < 60 && g < 60 && b < 60) dark++;
            if (r > 180 && g < 120 && b < 100) red++;
          }
          return dark > 50 && red > 500;
        }""",
        selector,
    )


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_thumbnails_lightbox_and_pdf_preview(browser_context, live_server, alice, mail, size, scheme, language):
    tag = f"{size}-{scheme}-{language}"
    context = browser_context(size, scheme, language, language=language)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    watch = Watch(page)
    message_url = f"{live_server.url}/message/{mail.id}/"
    page.goto(message_url, wait_until="networkidle")

    # Every image attachment got a server-made thumbnail; the other kinds show their icon and type in words.
    thumbs = page.locator("img.attachment-thumb")
    assert thumbs.count() == 3
    for i in range(3):
        thumbs.nth(i).scroll_into_view_if_needed()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumbs.nth(i).element_handle())
    cards = page.locator(".attachment")
    assert cards.count() == 8
    pdf_card = page.locator(".attachment", has_text="plan.pdf")
    assert re.search(r"^PDF, \d+ Bytes$" if language == "de" else r"^PDF, \d+ bytes$", pdf_card.inner_text(), re.M)
    xlsx_card = page.locator(".attachment", has_text="budget.xlsx")
    assert ("Excel-Tabelle, 1,2 KB" if language == "de" else "Excel spreadsheet, 1.2 KB") in xlsx_card.inner_text()
    zip_link = page.locator("a.attachments-zip")
    assert ("Alle herunterladen" if language == "de" else "Download all") in zip_link.inner_text()
    _fits(page, f"message ({tag})")
    page.locator(".attachments").scroll_into_view_if_needed()
    _shoot(page, f"message-{tag}")

    # Thumbnail → lightbox → next → next (arrow key) → close.
    page.locator("a[data-lightbox]", has_text="garden.jpg").click()
    dialog = page.locator("dialog.lightbox")
    assert dialog.is_visible()
    page.wait_for_function("() => document.querySelector('dialog.lightbox').dataset.loaded")
    assert page.locator("#lightbox-title").inner_text() == "garden.jpg"
    assert page.locator(".lightbox-count").inner_text() == ("1 von 3" if language == "de" else "1 of 3")
    _fits(page, f"lightbox ({tag})")
    _shoot(page, f"lightbox-{tag}", full_page=False)  # the lightbox covers the window, not the page
    page.locator(".lightbox-next").click()
    assert page.locator("#lightbox-title").inner_text() == "terrace.png"
    page.keyboard.press("ArrowRight")
    assert page.locator("#lightbox-title").inner_text() == "sunset.webp"
    page.keyboard.press("ArrowRight")  # wraps around
    assert page.locator("#lightbox-title").inner_text() == "garden.jpg"
    page.locator(".lightbox-close").click()
    assert not dialog.is_visible()

    # The PDF preview: pdf.js draws the pages into canvases on our own page; then back to the message.
    page.locator("a.attachment-open", has_text="plan.pdf").click()
    page.wait_for_url("**/attachment/*/preview/")
    page.wait_for_selector("#pdf-viewer[data-state=rendered]")
    assert page.locator("#pdf-viewer canvas").count() == 2
    assert _canvas_has_ink(page, "#pdf-viewer canvas[data-page='1']")
    _fits(page, f"PDF preview ({tag})")
    _shoot(page, f"pdf-{tag}")
    page.go_back()
    page.wait_for_url(message_url)
    assert page.locator(".attachment").count() == 8

    # Text, table and calendar previews.
    for name, shot in (("figures.csv", "csv"), ("meeting.ics", "calendar"), ("notes.txt", "text")):
        page.goto(message_url)
        page.locator("a.attachment-open", has_text=name).click()
        page.wait_for_url("**/attachment/*/preview/")
        _fits(page, f"{shot} preview ({tag})")
        _shoot(page, f"{shot}-{tag}")
    assert "<b>not bold</b>" in page.locator("pre.text-preview").inner_text()
    assert watch.problems == []
    context.close()


def test_an_image_that_cannot_be_shown_keeps_its_icon_and_stays_out_of_the_lightbox(
    browser_context, live_server, alice
):
    jpeg = samples.image("JPEG", (800, 600))
    raw = samples.message_with(
        [("cut.jpg", "image/jpeg", jpeg[: len(jpeg) // 3]), ("whole.png", "image/png", samples.image("PNG"))]
    )
    message = store_message(make_account(alice), raw, "u-cut")
    context = browser_context("phone", "light", "en", language="en")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    watch = Watch(page)
    page.goto(f"{live_server.url}/message/{message.id}/", wait_until="networkidle")
    cut = page.locator(".attachment", has_text="cut.jpg")
    assert "failed" in cut.locator("img").get_attribute("class")
    assert cut.locator(".attachment-icon").is_visible()
    page.locator("a[data-lightbox]", has_text="whole.png").click()
    page.wait_for_function("() => document.querySelector('dialog.lightbox').dataset.loaded")
    assert page.locator(".lightbox-next").is_hidden() and page.locator(".lightbox-count").is_hidden()
    page.keyboard.press("Escape")
    cut.locator("a.attachment-open").click()  # not the lightbox: the preview page, which says why
    page.wait_for_url("**/attachment/*/preview/")
    assert "This image cannot be shown" in page.locator(".attachment-page").inner_text()
    # The thumbnail's 404 is the only console error: the browser reports every failed load.
    assert [p for p in watch.problems if "404" not in p] == []
    context.close()


def test_calendar_card_shows_the_event_in_the_readers_time_zone(browser_context, live_server, alice, mail):
    from accounts.views_prefs import save_preferences

    save_preferences(alice, time_zone="America/New_York", conversations=True)
    context = browser_context("desktop", "light", "en", language="en")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    ics = mail.attachments.get(filename="meeting.ics")
    page.goto(f"{live_server.url}/attachment/{ics.id}/preview/")
    card = page.locator(".calendar-card")
    text = card.inner_text()
    assert "Quarterly planning, Q3" in text and "Alarm text" not in text
    assert "Room 4.2, Main building" in text
    assert "Carol Jones <carol@example.net>" in text
    # 14:00 in Berlin (UTC+1 in December) is 8:00 in New York (UTC-5).
    assert "8 a.m." in text and "9:30 a.m." in text, text
    context.close()


class _Trap(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_pdf_javascript_does_not_run(browser_context, live_server, alice):
    trap = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trap)
    _Trap.hits = []
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{trap.server_address[1]}"
    try:
        urllib.request.urlopen(f"{base}/canary").close()  # the trap answers when asked
        assert _Trap.hits == ["/canary"]
        script = (
            f'app.launchURL("{base}/launch", true); this.submitForm("{base}/submit"); '
            f'this.getURL("{base}/geturl"); app.alert("scripts ran");'
        )
        raw = samples.message_with(
            [
                (
                    "hostile.pdf",
                    "application/pdf",
                    samples.pdf(["Nothing to see"], javascript=script, link=f"{base}/link"),
                )
            ],
            subject="A PDF with scripts",
        )
        message = store_message(make_account(alice), raw, "u-js")
        attachment = message.attachments.get()
        context = browser_context("desktop", "light", "en", language="en")
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        dialogs, popups = [], []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("popup", lambda p: popups.append(p.url))
        page.goto(f"{live_server.url}/attachment/{attachment.id}/preview/", wait_until="networkidle")
        page.wait_for_selector("#pdf-viewer[data-state=rendered]")
        assert _canvas_has_ink(page, "#pdf-viewer canvas")
        page.locator("#pdf-viewer canvas").click()  # the link annotation covers the page: nothing follows it
        page.wait_for_load_state("networkidle")
        context.close()
        assert dialogs == [] and popups == []
        assert _Trap.hits == ["/canary"], f"the PDF reached the network: {_Trap.hits}"
    finally:
        trap.shutdown()
        trap.server_close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_attachment_pages_pass_axe(browser_context, live_server, alice, mail, axe, scheme):
    context = browser_context("desktop", scheme, "en", language="en")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems = []
    page.goto(f"{live_server.url}/message/{mail.id}/", wait_until="networkidle")
    problems += _describe("message with attachments", scheme, axe.run(page, options=AXE_OPTIONS).response["violations"])
    page.locator("a[data-lightbox]").first.click()
    page.wait_for_function("() => document.querySelector('dialog.lightbox').dataset.loaded")
    problems += _describe("lightbox", scheme, axe.run(page, options=AXE_OPTIONS).response["violations"])
    for attachment in mail.attachments.all():
        page.goto(f"{live_server.url}/attachment/{attachment.id}/preview/", wait_until="networkidle")
        if attachment.filename.endswith(".pdf"):
            page.wait_for_selector("#pdf-viewer[data-state=rendered]")
        results = axe.run(page, options=AXE_OPTIONS)
        problems += _describe(f"preview of {attachment.filename}", scheme, results.response["violations"])
    context.close()
    assert problems == [], "axe-core found serious/critical violations:\n" + "\n".join(problems)
