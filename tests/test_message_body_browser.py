"""A message's body in real Chromium, at a phone's size (390×844) and a desk's (1366×850).

- A 600 px newsletter fits the phone: inside the frame its widest element ends within the frame and
  nothing is hidden (no scrolling inside the frame either way), its main button is on screen, and the
  page never scrolls sideways; the reader can switch to the actual size (the frame's box then scrolls
  sideways) and back; pinch-zoom is not blocked; turning the phone lays the frame out again.
- Right-to-left mail (Arabic plain text and HTML written as ``<html dir="rtl">``) reads right to left:
  computed direction rtl and text against the right edge, in light and dark, English and German.
- Quoted text and signatures fold behind "…" (plain text and HTML), and show without script.
- format=flowed text reflows to the page's width; links in plain text are only http, https and mailto.
- axe finds no serious or critical problem on these pages.

Screenshots go to test-artifacts/screens/htmlfit-*.png. One Chromium per module (tests/browser.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests import html_samples
from tests.factories import build_message, make_account, store_message

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1366, "height": 850}
# A frame the browser does not measure is loaded again, with longer waits (static/js/message.js).
FRAME_READY_MS = 20_000
READY = "() => [...document.querySelectorAll('.mail-frame-box')].every(b => b.dataset.state === 'ready')"
# Inside the frame: the widest element's right edge, the frame's width, and whether anything scrolls.
FRAME_METRICS = """() => {
  let right = 0;
  for (const e of document.querySelectorAll('#webpop-message *')) {
    right = Math.max(right, e.getBoundingClientRect().right);
  }
  const root = document.documentElement;
  return {right, width: innerWidth, scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
          scrollHeight: root.scrollHeight, clientHeight: root.clientHeight};
}"""
# What the page says about the frame: for a failure's report.
FRAME_OUTSIDE = """() => [...document.querySelectorAll('iframe.mail-frame')].map(f => ({
  src: f.getAttribute('src'), height: f.getBoundingClientRect().height, style: f.getAttribute('style'),
  minHeight: getComputedStyle(f).minHeight, state: f.closest('.mail-frame-box').dataset.state,
  box: f.closest('.mail-frame-box').getAttribute('style')}))"""
# Every size the page's body frames take, and the state their box says, with the time: for a failure's report.
FRAME_HISTORY = """(() => {
  const log = window.__frameHistory = [];
  const t0 = performance.now();
  const note = (what, f) => log.push([Math.round(performance.now() - t0), what, f.getAttribute('src'),
    Math.round(f.getBoundingClientRect().width), Math.round(f.getBoundingClientRect().height),
    f.closest('.mail-frame-box') ? f.closest('.mail-frame-box').dataset.state : null]);
  const sizes = new ResizeObserver((entries) => entries.forEach((e) => note('size', e.target)));
  const watched = new WeakSet();
  new MutationObserver(() => document.querySelectorAll('iframe.mail-frame').forEach((f) => {
    if (watched.has(f)) return;
    watched.add(f);
    sizes.observe(f);
    f.addEventListener('load', () => note('load', f));
  })).observe(document, {childList: true, subtree: true});
})()"""
# On the page: no sideways scrolling, and where the frame is.
PAGE_METRICS = """() => {
  const frame = document.querySelector('iframe.mail-frame'), box = document.querySelector('.mail-frame-box');
  const r = frame ? frame.getBoundingClientRect() : null;
  return {scrollWidth: document.scrollingElement.scrollWidth, innerWidth,
          frameLeft: r && r.left, frameRight: r && r.right, frameHeight: r && r.height,
          scale: frame && frame.style.transform ? parseFloat(frame.style.transform.slice(6)) : 1,
          boxScrollWidth: box && box.scrollWidth, boxClientWidth: box && box.clientWidth};
}"""
# Where a text's glyphs are in its element: right to left text ends at the element's right edge.
TEXT_EDGES = """(e) => {
  const range = document.createRange(); range.selectNodeContents(e);
  const text = range.getBoundingClientRect(), box = e.getBoundingClientRect(), style = getComputedStyle(e);
  return {direction: style.direction, textLeft: text.left, textRight: text.right,
          left: box.left + parseFloat(style.paddingLeft), right: box.right - parseFloat(style.paddingRight)};
}"""

ARABIC_TEXT = (
    "مرحبا أحمد،\n\n"
    "شكرا على رسالتك. سنلتقي يوم الجمعة في المكتب الرئيسي لمناقشة الخطة الجديدة.\n\n"
    "The agenda is attached.\n\n"
    "في ٢٣ نوفمبر كتب بوب:\n> هل يناسبك يوم الجمعة؟\n\n-- \nسارة"
)
ARABIC_HTML = (
    '<html dir="rtl" lang="ar"><body style="font-family: Tahoma, sans-serif">'
    "<h2>النشرة الأسبوعية</h2><p>أهلا بكم في نشرتنا. هذا الأسبوع نتحدث عن البريد الإلكتروني الآمن.</p>"
    '<table width="100%"><tr><td>العمود الأول</td><td dir="ltr" align="left">English column</td></tr></table>'
    "</body></html>"
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def account(alice):
    return make_account(alice)


@pytest.fixture
def tab(browser_context):
    """Open a logged-in tab: ``tab(viewport, scheme=, locale=, javascript=)``; page errors fail the test."""
    errors = []

    def open_tab(viewport=PHONE, *, scheme="light", locale="en-US", javascript=True):
        context = browser_context(viewport, scheme, locale, java_script_enabled=javascript)
        context.add_init_script(FRAME_HISTORY)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield open_tab
    assert errors == []


def wait_until(predicate, what: str, timeout: float = 10.0):
    """Poll ``predicate`` until it returns something true (the browser lays out frames after load)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.05)


def body_frame(page):
    return next((f for f in page.frames if "/body/" in f.url), None)


def settled_frame(page):
    """The body frame once the page has fitted it and the browser has sized it to its content."""
    page.wait_for_function(READY, timeout=FRAME_READY_MS)
    frame = wait_until(lambda: body_frame(page), "the body frame")

    seen = {}

    def fits():
        m = seen["inside"] = frame.evaluate(FRAME_METRICS)
        return m if m["scrollHeight"] <= m["clientHeight"] + 2 else None

    try:
        wait_until(fits, "the frame to take its content's height")
    except BaseException:
        outside = page.evaluate(FRAME_OUTSIDE)
        history = page.evaluate("() => window.__frameHistory")
        raise AssertionError(
            f"frame not sized: inside {seen.get('inside')}, outside {outside}, history {history}"
        ) from None
    return frame


def open_message(page, live_server, message, query: str = ""):
    page.goto(f"{live_server.url}/message/{message.id}/{query}", wait_until="load")
    if page.locator("iframe.mail-frame").count():
        return settled_frame(page)
    return None


def shot(page, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"htmlfit-{name}.png"), full_page=True)


def on_page(page, frame, locator) -> tuple[float, float]:
    """An element's left and right edge in the frame, in the page's pixels (the frame may be scaled)."""
    inside = locator.evaluate("e => { const r = e.getBoundingClientRect(); return [r.left, r.right, innerWidth]; }")
    outside = page.evaluate(PAGE_METRICS)
    scale = (outside["frameRight"] - outside["frameLeft"]) / inside[2]
    return outside["frameLeft"] + inside[0] * scale, outside["frameLeft"] + inside[1] * scale


def assert_fits(frame, page) -> dict:
    inside = frame.evaluate(FRAME_METRICS)
    assert inside["right"] <= inside["width"] + 0.5, f"content ends beyond the frame: {inside}"
    assert inside["scrollWidth"] <= inside["clientWidth"], f"the frame scrolls sideways: {inside}"
    assert inside["scrollHeight"] <= inside["clientHeight"] + 2, f"the frame hides content below: {inside}"
    outside = page.evaluate(PAGE_METRICS)
    assert outside["scrollWidth"] <= outside["innerWidth"], f"the page scrolls sideways: {outside}"
    assert outside["frameLeft"] >= 0 and outside["frameRight"] <= outside["innerWidth"], outside
    return outside


# --- Wide HTML mail on a phone ----------------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "locale"), [("light", "en-US"), ("dark", "de-DE")])
def test_a_600px_newsletter_fits_a_phone(tab, live_server, account, scheme, locale):
    message = store_message(account, html_samples.message("11_concert_tickets"), "wide-1")
    page = tab(PHONE, scheme=scheme, locale=locale)
    frame = open_message(page, live_server, message)
    outside = assert_fits(frame, page)
    assert 0 < outside["scale"] < 0.7  # laid out at the newsletter's width, scaled down
    button = frame.get_by_role("link", name="Pay for my tickets")
    assert button.is_visible()
    left, right = on_page(page, frame, button)
    assert left >= 0 and right <= PHONE["width"], (left, right)
    toggle = page.locator(".fit-toggle")
    assert toggle.is_visible() and toggle.get_attribute("aria-pressed") == "true"
    assert toggle.inner_text() == ("An Breite anpassen" if locale == "de-DE" else "Fit to width")
    shot(page, f"newsletter-fitted-390-{scheme}-{locale[:2]}")


def test_every_sample_newsletter_fits_a_phone(tab, live_server, account):
    page = tab(PHONE)
    for name in sorted(html_samples.SAMPLES):
        message = store_message(account, html_samples.message(name), f"nl-{name}")
        frame = open_message(page, live_server, message)
        try:
            assert_fits(frame, page)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from None


def test_the_reader_switches_between_fitted_and_actual_size(tab, live_server, account):
    message = store_message(account, html_samples.message("11_concert_tickets"), "wide-1")
    page = tab(PHONE)
    open_message(page, live_server, message)
    toggle = page.locator(".fit-toggle")
    toggle.click()
    frame = settled_frame(page)
    assert toggle.get_attribute("aria-pressed") == "false"
    outside = page.evaluate(PAGE_METRICS)
    assert outside["scale"] == 1  # actual size
    assert outside["boxScrollWidth"] > outside["boxClientWidth"]  # the frame's box scrolls sideways …
    assert outside["scrollWidth"] <= outside["innerWidth"]  # … never the page
    inside = frame.evaluate(FRAME_METRICS)
    assert inside["right"] <= inside["width"] + 0.5 and inside["scrollHeight"] <= inside["clientHeight"] + 2
    button = frame.get_by_role("link", name="Pay for my tickets")
    assert on_page(page, frame, button)[1] > PHONE["width"]  # at its actual size, off to the right …
    page.locator(".mail-frame-box").evaluate("b => { b.scrollLeft = b.scrollWidth; }")
    assert on_page(page, frame, button)[1] <= PHONE["width"]  # … until the reader scrolls there
    shot(page, "newsletter-actual-size-390-light-en")
    toggle.focus()
    page.keyboard.press("Enter")
    frame = settled_frame(page)
    assert toggle.get_attribute("aria-pressed") == "true"
    assert_fits(frame, page)


def test_without_script_a_wide_newsletter_scrolls_sideways_in_its_frame(tab, live_server, account):
    message = store_message(account, html_samples.message("11_concert_tickets"), "wide-1")
    page = tab(PHONE, javascript=False)
    page.goto(f"{live_server.url}/message/{message.id}/", wait_until="load")
    frame = wait_until(lambda: body_frame(page), "the body frame")
    inside = frame.evaluate(FRAME_METRICS)
    assert inside["scrollWidth"] > inside["clientWidth"]  # wider than the frame …
    frame.evaluate("() => { document.scrollingElement.scrollLeft = document.scrollingElement.scrollWidth; }")
    edges = frame.get_by_role("link", name="Pay for my tickets").evaluate(
        "e => [e.getBoundingClientRect().left, e.getBoundingClientRect().right, innerWidth, scrollX]"
    )
    assert edges[3] > 0 and edges[0] >= 0 and edges[1] <= edges[2]  # … and scrolls to it: nothing is cut off
    assert page.evaluate(PAGE_METRICS)["scrollWidth"] <= PHONE["width"]  # the page itself never does
    assert page.locator(".fit-toggle").is_hidden()


def test_pinch_zoom_is_not_blocked(tab, live_server, account):
    message = store_message(account, html_samples.message("11_concert_tickets"), "wide-1")
    page = tab(PHONE)
    open_message(page, live_server, message)
    viewport = page.locator("meta[name=viewport]").get_attribute("content").replace(" ", "").lower()
    assert "user-scalable=no" not in viewport and "user-scalable=0" not in viewport
    assert "maximum-scale" not in viewport
    actions = page.evaluate(
        "() => ['html', 'body', '.mail-frame-box', 'iframe.mail-frame'].map("
        "s => getComputedStyle(document.querySelector(s)).touchAction)"
    )
    assert actions == ["auto"] * 4


def test_on_a_desk_the_newsletter_keeps_its_own_size(tab, live_server, account):
    message = store_message(account, html_samples.message("11_concert_tickets"), "wide-1")
    page = tab(DESK)
    frame = open_message(page, live_server, message)
    outside = assert_fits(frame, page)
    assert outside["scale"] == 1 and page.locator(".fit-toggle").is_hidden()
    shot(page, "newsletter-1366-light-en")


def test_turning_the_phone_lays_the_frame_out_again(tab, live_server, account):
    message = store_message(account, html_samples.message("11_concert_tickets"), "wide-1")
    page = tab(DESK)
    open_message(page, live_server, message)
    page.set_viewport_size(PHONE)
    wait_until(lambda: page.evaluate(PAGE_METRICS)["scale"] < 1, "the frame to be fitted")
    assert_fits(settled_frame(page), page)
    page.set_viewport_size(DESK)
    wait_until(lambda: page.evaluate(PAGE_METRICS)["scale"] == 1, "the frame at its own size again")
    assert_fits(settled_frame(page), page)


# --- Right to left ---------------------------------------------------------------------------------


def assert_right_to_left(edges: dict) -> None:
    assert edges["direction"] == "rtl", edges
    assert abs(edges["textRight"] - edges["right"]) <= 2, f"not against the right edge: {edges}"


@pytest.mark.parametrize("size", ["390", "1366"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
def test_arabic_mail_reads_right_to_left(tab, live_server, account, size, scheme, locale):
    viewport = PHONE if size == "390" else DESK
    page = tab(viewport, scheme=scheme, locale=locale)
    plain = store_message(
        account, build_message("اجتماع الجمعة", ARABIC_TEXT, sender="سارة <sara@example.net>"), "ar-1"
    )
    open_message(page, live_server, plain)
    assert page.locator("h1").evaluate("e => getComputedStyle(e).direction") == "rtl"
    body = page.locator(".plain-body")
    assert body.evaluate("e => getComputedStyle(e).direction") == "rtl"
    arabic = body.locator("p", has_text="شكرا على رسالتك")
    assert_right_to_left(arabic.evaluate(TEXT_EDGES))
    english = body.locator("p", has_text="The agenda is attached.").evaluate(TEXT_EDGES)
    assert english["direction"] == "ltr" and abs(english["textLeft"] - english["left"]) <= 2, english
    toggle = body.locator(".fold-toggle")
    assert toggle.get_attribute("aria-label") == ("Zitierten Text zeigen" if locale == "de-DE" else "Show quoted text")
    assert page.evaluate(PAGE_METRICS)["scrollWidth"] <= viewport["width"]
    shot(page, f"arabic-plain-{size}-{scheme}-{locale[:2]}")

    html = store_message(account, html_samples.html_message(ARABIC_HTML, subject="النشرة", text=None), "ar-2")
    frame = open_message(page, live_server, html)
    paragraph = frame.locator("p", has_text="أهلا بكم في نشرتنا")
    assert_right_to_left(paragraph.evaluate(TEXT_EDGES))
    column = frame.locator("td", has_text="English column").evaluate(TEXT_EDGES)
    assert column["direction"] == "ltr"
    assert_fits(frame, page)
    shot(page, f"arabic-html-{size}-{scheme}-{locale[:2]}")


def test_the_inbox_shows_arabic_subjects_right_to_left(tab, live_server, account):
    store_message(account, build_message("اجتماع الجمعة", "نص", sender="سارة <sara@example.net>"), "ar-1")
    store_message(account, build_message("Friday meeting", "text"), "en-1")
    page = tab(PHONE)
    page.goto(f"{live_server.url}/", wait_until="load")
    directions = page.locator("#message-list .subject").evaluate_all("l => l.map(e => getComputedStyle(e).direction)")
    assert sorted(directions) == ["ltr", "rtl"]
    assert page.evaluate(PAGE_METRICS)["scrollWidth"] <= PHONE["width"]
    shot(page, "inbox-arabic-390-light-en")


# --- Folding quoted text ---------------------------------------------------------------------------


def test_plain_text_quotes_and_signature_fold_behind_an_ellipsis(tab, live_server, account):
    text = "Friday works.\n\nOn Mon, Bob wrote:\n> Lunch on Friday?\n> Bob\n\n-- \nAlice Example\nExample Corp"
    message = store_message(account, build_message("Re: Lunch", text), "q-1")
    page = tab(PHONE)
    open_message(page, live_server, message)
    toggle = page.locator(".plain-body .fold-toggle")
    quote = page.get_by_text("Lunch on Friday?")
    assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
    assert quote.is_hidden() and page.get_by_text("Alice Example").is_hidden()
    assert page.get_by_text("Friday works.").is_visible()
    shot(page, "plain-folded-390-light-en")
    toggle.click()
    assert quote.is_visible() and page.get_by_text("Alice Example", exact=False).is_visible()
    assert toggle.get_attribute("aria-expanded") == "true" and toggle.get_attribute("aria-label") == "Hide quoted text"
    toggle.focus()
    page.keyboard.press("Enter")
    assert quote.is_hidden()

    without_script = tab(PHONE, javascript=False)
    without_script.goto(f"{live_server.url}/message/{message.id}/", wait_until="load")
    assert without_script.get_by_text("Lunch on Friday?").is_visible()
    assert without_script.locator(".plain-body .fold-toggle").is_hidden()


def test_html_quotes_fold_and_the_frame_follows_their_height(tab, live_server, account):
    markup = (
        '<div dir="ltr">Friday works for me.</div><br><div class="gmail_quote"><div class="gmail_attr">'
        'On Mon, Bob wrote:</div><blockquote class="gmail_quote">Lunch on Friday?<br>Bob<br><br><br>'
        "Sent from the road</blockquote></div>"
    )
    message = store_message(account, html_samples.html_message(markup, text=None), "q-2")
    page = tab(PHONE)
    frame = open_message(page, live_server, message)
    assert frame.get_by_text("Friday works for me.").is_visible()
    assert frame.get_by_text("On Mon, Bob wrote:").is_hidden()
    toggle = page.locator(".fold-toggle")
    assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    frame = settled_frame(page)
    assert "quoted=1" in frame.url and frame.get_by_text("Sent from the road").is_visible()
    assert toggle.get_attribute("aria-expanded") == "true" and toggle.get_attribute("aria-label") == "Hide quoted text"
    assert page.url == f"{live_server.url}/message/{message.id}/"  # only the frame was loaded again
    assert_fits(frame, page)
    shown = page.evaluate(PAGE_METRICS)["frameHeight"]
    shot(page, "html-quote-shown-390-light-en")
    toggle.click()
    frame = settled_frame(page)
    assert frame.get_by_text("On Mon, Bob wrote:").is_hidden()
    assert page.evaluate(PAGE_METRICS)["frameHeight"] < shown - 60  # the frame is short again
    page.go_back()  # reloading the frame added nothing to the tab's history
    assert page.url == "about:blank"

    without_script = tab(PHONE, javascript=False)
    without_script.goto(f"{live_server.url}/message/{message.id}/", wait_until="load")
    without_script.locator(".fold-toggle").click()
    without_script.wait_for_url(f"{live_server.url}/message/{message.id}/?quoted=1")
    frame = wait_until(lambda: body_frame(without_script), "the body frame")
    assert frame.get_by_text("On Mon, Bob wrote:").is_visible()


# --- Plain text: flowed paragraphs and links -----------------------------------------------------------


def test_flowed_text_reflows_to_the_page_width(tab, live_server, account):
    lines = [
        "This paragraph was written in a mail program that wraps at seventy-two ",
        "columns and marks each soft break with a trailing space, as RFC 3676 ",
        "describes, so that the reader's screen can join the lines again and ",
        "wrap them at its own width instead of leaving ragged short lines on a ",
        "wide screen or lines too long for a phone.",
        "",
        "https://example.com/a/very/long/path/that/does/not/fit/on/a/phone/screen/at/all/" + "x" * 60,
    ]
    raw = (
        "From: Carol <carol@example.net>\r\nTo: alice@example.org\r\nSubject: Flowed\r\n"
        "Date: Thu, 26 Nov 2026 09:00:00 +0000\r\nMessage-ID: <flowed@example.net>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n" + "\r\n".join(lines) + "\r\n"
    ).encode()
    message = store_message(account, raw, "f-1")
    desk = tab(DESK)
    open_message(desk, live_server, message)
    paragraph = desk.locator(".plain-body p").first
    assert "\n" not in paragraph.inner_text()
    line_height = paragraph.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    assert round(paragraph.bounding_box()["height"] / line_height) <= 3  # five source lines, joined and rewrapped
    phone = tab(PHONE)
    open_message(phone, live_server, message)
    assert phone.locator(".plain-body p").count() == 2
    for paragraph in phone.locator(".plain-body p").all():  # the long address wraps too
        assert paragraph.evaluate("e => e.scrollWidth <= e.clientWidth")
    assert phone.evaluate(PAGE_METRICS)["scrollWidth"] <= PHONE["width"]
    font = paragraph.evaluate("e => getComputedStyle(e).fontFamily")
    assert "monospace" not in font  # the reading font, not a typewriter's
    shot(phone, "plain-flowed-390-light-en")


def test_links_in_plain_text_are_only_web_and_mail_addresses(tab, live_server, account):
    text = (
        "Read https://example.com/news, write mailto:bob@example.org.\n"
        "Not these: javascript:alert(1) data:text/html,<b>x</b> file:///etc/passwd vbscript:x"
    )
    message = store_message(account, build_message("Links", text), "l-1")
    page = tab(DESK)
    open_message(page, live_server, message)
    links = page.locator(".plain-body a").evaluate_all(
        "l => l.map(a => [a.protocol, a.href, a.target, [...a.relList].sort().join(' ')])"
    )
    assert links == [
        ["https:", "https://example.com/news", "_blank", "nofollow noopener noreferrer"],
        ["mailto:", "mailto:bob@example.org", "_blank", "nofollow noopener noreferrer"],
    ]


# --- Accessibility ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_problem_on_these_bodies(tab, live_server, account, scheme):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    plain = store_message(account, build_message("اجتماع الجمعة", ARABIC_TEXT), "ar-1")
    wide = store_message(account, html_samples.message("11_concert_tickets"), "wide-1")
    reply = store_message(
        account,
        html_samples.html_message('<p>Yes.</p><blockquote type="cite">Lunch?</blockquote>', text=None),
        "q-1",
    )
    problems = []
    page = tab(PHONE, scheme=scheme)
    for message in (plain, wide, reply):
        open_message(page, live_server, message)
        results = axe.run(page, options={"resultTypes": ["violations"], "iframes": False})
        for violation in results.response["violations"]:
            if violation.get("impact") in ("serious", "critical"):
                targets = [" ".join(map(str, n.get("target", []))) for n in violation["nodes"][:5]]
                problems.append(f"{message.subject} [{scheme}] {violation['id']}: {targets}")
    assert problems == []
