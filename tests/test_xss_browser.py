"""Invariant 6 in real Chromium: untrusted mail HTML never runs script and never loads remote content.

Every vector of tests/xss_vectors/vectors.txt is delivered as its own message and opened on the real
message page (live server, logged-in session). For each we assert: no dialog, no ``pwned`` flag in the
top page or the frame, no PWNED console line or page error, and no request for any host other than the
app's own origin (every other request is recorded and aborted). With the sanitizer on, the first wall
alone must stop everything, so Chromium must not even report a script or resource it blocked. With the
sanitizer switched off (test-only setting), the second wall (sandbox + CSP) must hold on its own.

Also here: the ten newsletter samples render with their tables and colours (screenshots in
test-artifacts/), dark mode, remote images through the proxy, frame sizing, the plain-text toggle.

One Chromium per module (Playwright driving Debian's /usr/bin/chromium; never ``playwright install``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailbox.sanitize import clean
from tests import html_samples, xss_vectors
from tests.factories import make_account, store_message
from tests.test_imageproxy import PNG, ImageServer

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
VECTOR_CLASSES = xss_vectors.by_class()
# What Chromium says when it blocks script or a load: never seen while the sanitizer is on.
BLOCKED = re.compile(r"Blocked script execution|Refused to|Content Security Policy|Ignored call to", re.I)

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class UI:
    """A logged-in browser tab on the live server, and everything it did."""

    page: object
    url: str
    account: object
    foreign: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.foreign.clear()
        self.dialogs.clear()
        self.console.clear()
        self.errors.clear()

    def deliver(self, raw: bytes, uidl: str):
        return store_message(self.account, raw, uidl)

    def open(self, message, query: str = "") -> object:
        """Open the message page; returns the body frame (None when there is none)."""
        self.page.goto(f"{self.url}/message/{message.id}/{query}", wait_until="load")
        # The page says when its frames are ready (js/message.js may load a frame again before that).
        self.page.wait_for_function(FRAMES_READY, timeout=FRAME_READY_MS)
        return self.body_frame()

    def settled_frame(self):
        """The body frame once the page says its frames are ready (after a navigation)."""
        self.page.wait_for_load_state("load")
        self.page.wait_for_function(FRAMES_READY, timeout=FRAME_READY_MS)
        return self.body_frame()

    def body_frame(self):
        for frame in self.page.frames:
            if "/body/" in frame.url:
                return frame
        return None

    def pwned(self, frame) -> list[str]:
        found = []
        if self.page.evaluate("() => window.pwned"):
            found.append("top.pwned set")
        if frame is not None:
            try:
                if frame.evaluate("() => window.pwned"):
                    found.append("frame pwned set")
            except Exception as exc:  # a frame that navigated away is itself a failure
                found.append(f"frame not inspectable: {exc}")
        return found


# A frame the browser does not measure is loaded again, with longer waits (static/js/message.js).
FRAME_READY_MS = 20_000
FRAMES_READY = "() => [...document.querySelectorAll('.mail-frame-box')].every(b => b.dataset.state === 'ready')"


def _settled(frame, heights: str, timeout: float = 5.0) -> list[int]:
    """``heights`` ([content, frame] in the frame) once the content fits, or as it is after ``timeout``.

    The frame is sized by the browser (frame-sizing: content-height) after its content and
    images are laid out, which can be a moment after the page's load event.
    """
    deadline = time.monotonic() + timeout
    while True:
        inner = frame.evaluate(heights)
        if inner[0] <= inner[1] + 2 or time.monotonic() > deadline:
            return inner
        time.sleep(0.05)


@pytest.fixture
def ui(browser_context, live_server, alice):
    origin = live_server.url
    context = browser_context({"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(5000)
    state = UI(page=page, url=origin, account=make_account(alice))

    def foreign(route):
        state.foreign.append(route.request.url)
        route.abort()

    def dialog(d):
        state.dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    # Only requests for other origins are routed (matched in the browser's driver, so the app's own
    # requests are not slowed down); each is recorded and aborted.
    context.route(re.compile(rf"^(?!{re.escape(origin)}/)"), foreign)
    page.on("dialog", dialog)
    page.on("console", lambda message: state.console.append(message.text))
    page.on("pageerror", lambda error: state.errors.append(str(error)))
    yield state
    context.close()


def _wrap(vector) -> str:
    return f"<p>vector {vector.id} begins</p>\n{vector.html}\n<p>vector {vector.id} ends</p>"


def _hover_over_frame(page) -> None:
    box = page.locator("iframe.mail-frame").bounding_box()
    if box:
        page.mouse.move(box["x"] + 20, box["y"] + 20)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + min(box["height"] - 4, 70), steps=3)


def _problems(ui: UI, frame, *, strict: bool) -> list[str]:
    problems = [f"dialog {d}" for d in ui.dialogs]
    problems += [f"request to {url}" for url in ui.foreign]
    problems += ui.pwned(frame)
    problems += [f"page error {e}" for e in ui.errors]
    for line in ui.console:
        if "PWNED" in line or (strict and BLOCKED.search(line)):
            problems.append(f"console: {line}")
    return problems


# --- The XSS suite -----------------------------------------------------------------------------


def test_the_suite_has_enough_vectors():
    assert sum(len(v) for v in VECTOR_CLASSES.values()) >= 80
    assert len(VECTOR_CLASSES) >= 10
    assert all(len(vectors) >= 3 for vectors in VECTOR_CLASSES.values())


@pytest.mark.parametrize("cls", sorted(VECTOR_CLASSES))
def test_xss_vectors_in_the_real_ui(ui, cls):
    failures = []
    vectors = VECTOR_CLASSES[cls]
    messages = [
        ui.deliver(html_samples.html_message(_wrap(v), subject=f"Vector {v.id}", text=None), f"uid-{v.id}")
        for v in vectors
    ]
    for vector, message in zip(vectors, messages, strict=True):
        once = clean(vector.html)
        if clean(once) != once:
            failures.append(f"{vector.id}: clean() is not idempotent")
        ui.reset()
        frame = ui.open(message)
        if frame is None:
            failures.append(f"{vector.id}: no body frame")
            continue
        if "mouse" in vector.html:
            _hover_over_frame(ui.page)
        ui.page.wait_for_timeout(30)
        text = frame.locator("body").inner_text()
        if f"vector {vector.id} begins" not in text or f"vector {vector.id} ends" not in text:
            failures.append(f"{vector.id}: the message did not render: {text[:200]!r}")
        failures += [f"{vector.id}: {problem}" for problem in _problems(ui, frame, strict=True)]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("cls", sorted(VECTOR_CLASSES))
def test_with_sanitizing_off_the_sandbox_and_csp_still_hold(ui, settings, cls):
    """The second wall alone: each class's vectors together, served unsanitized."""
    settings.WEBPOP_SANITIZE_HTML = False
    vectors = VECTOR_CLASSES[cls]
    markup = "\n".join(f"<div>{_wrap(v)}</div>" for v in vectors)
    message = ui.deliver(html_samples.html_message(markup, subject=f"Unsanitized {cls}", text=None), f"raw-{cls}")
    frame = ui.open(message)
    assert frame is not None
    _hover_over_frame(ui.page)
    ui.page.wait_for_timeout(100)
    assert _problems(ui, frame, strict=False) == []
    # The frame really holds the unsanitized markup (the test switch works).
    served = frame.evaluate("() => document.body.innerHTML")
    assert all(f"vector {v.id} begins" in served for v in vectors)
    if cls == "script-and-handlers":
        assert "onerror" in served and "<script" in served.lower()


def test_a_script_in_a_message_does_not_run_even_unsanitized_and_opened_on_its_own(ui, settings):
    """With sanitizing off, opening the body URL as a top-level page: the CSP sandbox holds too."""
    settings.WEBPOP_SANITIZE_HTML = False
    markup = (
        "<p>unsanitized</p><script>top.pwned=1;console.log('PWNED');alert(1)</script>"
        '<img src=x onerror="top.pwned=1;console.log(\'PWNED\')"><svg onload="top.pwned=1"></svg>'
        '<img src="https://evil.example/remote.png"><iframe srcdoc="<script>top.pwned=1</script>"></iframe>'
    )
    message = ui.deliver(html_samples.html_message(markup, subject="Script", text=None), "script-1")
    frame = ui.open(message)
    assert frame.locator("body").inner_text().strip().startswith("unsanitized")
    assert _problems(ui, frame, strict=False) == []
    assert any(BLOCKED.search(line) for line in ui.console), ui.console  # the walls were exercised
    ui.reset()
    ui.page.goto(f"{ui.url}/message/{message.id}/body/", wait_until="load")
    ui.page.wait_for_timeout(100)
    assert "<script>" in ui.page.content()
    problems = [f"dialog {d}" for d in ui.dialogs] + [f"request to {u}" for u in ui.foreign] + ui.errors
    problems += [line for line in ui.console if "PWNED" in line]
    assert problems == []
    assert not ui.page.evaluate("() => window.pwned")


# --- Faithful rendering --------------------------------------------------------------------------


def _look(frame, text: str, what: str):
    locator = frame.get_by_text(text, exact=True).first
    if what == "hidden":
        return not locator.is_visible()
    return locator.evaluate(
        "(e, what) => {"
        "  if (what === 'background') {"
        "    for (let x = e; x; x = x.parentElement) {"
        "      const bg = getComputedStyle(x).backgroundColor;"
        "      if (bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') return bg;"
        "    }"
        "    return null;"
        "  }"
        "  return getComputedStyle(e).getPropertyValue(what);"
        "}",
        what,
    )


@pytest.mark.parametrize("name", sorted(html_samples.SAMPLES))
def test_newsletters_render_with_their_tables_and_colours(ui, name):
    expected = html_samples.SAMPLES[name]
    message = ui.deliver(html_samples.message(name), f"nl-{name}")
    frame = ui.open(message)
    assert frame is not None
    mismatches = []
    if frame.locator("table").count() < expected["tables"]:
        mismatches.append(f"tables: {frame.locator('table').count()} < {expected['tables']}")
    for text, what, want in expected["looks"]:
        got = _look(frame, text, what)
        if what == "font-family" and isinstance(got, str):
            ok = want in got
        else:
            ok = got == want
        if not ok:
            mismatches.append(f"{text!r} {what}: {got!r} != {want!r}")
    # Inline images came through their signed URLs and decoded.
    for cid in expected["cids"]:
        alt_or_any = frame.locator("img[src*='/cid/']")
        assert alt_or_any.count() >= 1, cid
    loaded = frame.evaluate("() => [...document.images].filter(i => i.src.includes('/cid/')).map(i => i.naturalWidth)")
    assert all(width > 0 for width in loaded) and len(loaded) == len(expected["cids"])
    # The frame fits its content: no inner vertical scrolling (once the browser has sized it).
    inner = _settled(frame, "() => [document.documentElement.scrollHeight, document.documentElement.clientHeight]")
    assert inner[0] <= inner[1] + 2, f"frame scrolls: {inner}"
    assert _problems(ui, frame, strict=True) == []
    ARTIFACTS.joinpath("newsletters").mkdir(parents=True, exist_ok=True)
    ui.page.screenshot(path=str(ARTIFACTS / "newsletters" / f"{name}.png"), full_page=True)
    assert not mismatches, "\n".join(mismatches)


def _luminance(css_rgb: str) -> float:
    red, green, blue = (int(x) / 255 for x in re.findall(r"\d+", css_rgb)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_dark_mode_keeps_mail_readable(browser_context, live_server, alice):
    context = browser_context({"width": 1100, "height": 900}, scheme="dark")
    try:
        page = context.new_page()
        message = store_message(make_account(alice), html_samples.message("02_tech_digest"), "dark-1")
        page.goto(f"{live_server.url}/message/{message.id}/", wait_until="load")
        page.wait_for_function(FRAMES_READY, timeout=FRAME_READY_MS)
        app_background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert _luminance(app_background) < 0.2, app_background  # the app itself is dark
        frame = next(f for f in page.frames if "/body/" in f.url)
        assert (
            frame.evaluate("() => getComputedStyle(document.documentElement).backgroundColor") == "rgb(255, 255, 255)"
        )
        unstyled = frame.get_by_text("Datagram support (RFC 9221)", exact=True)
        assert unstyled.evaluate("e => getComputedStyle(e).color") == "rgb(51, 51, 51)"
        plain = store_message(
            make_account(alice, username="dark2"),
            html_samples.html_message("<p>No colours at all</p>", subject="Plain"),
            "dark-2",
        )
        page.goto(f"{live_server.url}/message/{plain.id}/", wait_until="load")
        page.wait_for_function(FRAMES_READY, timeout=FRAME_READY_MS)
        frame = next(f for f in page.frames if "/body/" in f.url)
        colour = frame.get_by_text("No colours at all").evaluate("e => getComputedStyle(e).color")
        assert colour == "rgb(28, 30, 33)"  # dark text on the frame's white page
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dark-mode.png"), full_page=True)
    finally:
        context.close()


# --- Remote images, page furniture ------------------------------------------------------------------


@pytest.fixture
def image_server():
    server = ImageServer()
    server.routes["/shoe.png"] = (200, {"Content-Type": "image/png"}, html_samples.png(120, 80, (200, 30, 30)), 0)
    yield server
    server.close()


def test_remote_images_blocked_then_shown_through_the_proxy(ui, image_server, settings):
    settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = True  # the "remote" server is on loopback here
    remote = image_server.url("/shoe.png")
    markup = f'<p>New shoes</p><img src="{remote}" alt="Red shoe" width="120" height="80">'
    message = ui.deliver(html_samples.html_message(markup, sender="Shop <deals@shop.example>"), "remote-1")

    frame = ui.open(message)
    bar = ui.page.locator(".remote-images")
    assert "blocked" in bar.inner_text()
    assert frame.locator("img[data-webpop-blocked]").count() == 1
    assert image_server.requests == [] and ui.foreign == []

    ui.page.get_by_role("link", name="Show images").click()
    frame = ui.settled_frame()
    assert frame.evaluate("() => document.images[0].naturalWidth") == 120
    # Only the proxy fetched it, and only this image (a frame laid out twice may ask for it twice).
    assert {path for path, _ in image_server.requests} == {"/shoe.png"}
    for _path, headers in image_server.requests:
        assert "cookie" not in headers and "referer" not in headers
    assert ui.foreign == []  # the browser itself never contacted the image's host

    ui.page.get_by_role("button", name="Always show from deals@shop.example").click()
    frame = ui.settled_frame()
    assert "?images" not in ui.page.url
    assert frame.evaluate("() => document.images[0].naturalWidth") == 120
    assert "shown for deals@shop.example" in ui.page.locator(".remote-images").inner_text()

    ui.page.get_by_role("button", name="Block them again").click()
    assert ui.settled_frame().locator("img[data-webpop-blocked]").count() == 1
    assert ui.foreign == [] and _problems(ui, ui.body_frame(), strict=True) == []


def test_page_furniture_links_and_plain_text_toggle(ui):
    markup = (
        '<p>Hello <a href="https://example.com/read">read more</a></p>'
        '<img src="cid:pic@x" alt="pic" width="40" height="40">'
    )
    raw = html_samples.html_message(markup, text="Hello, plain version.", cids={"pic@x": PNG})
    message = ui.deliver(raw, "furniture-1")
    frame = ui.open(message)
    # The app's CSS (whitenoise / staticfiles) is there: the frame is styled by message.css.
    assert (
        ui.page.evaluate("() => getComputedStyle(document.querySelector('.mail-frame')).borderTopLeftRadius") == "6px"
    )
    assert (
        ui.page.locator("iframe.mail-frame").get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
    )
    link = frame.get_by_role("link", name="read more")
    assert link.get_attribute("target") == "_blank" and link.get_attribute("rel") == "noopener noreferrer"
    # The frame's height follows its content (frame-sizing), no script inside it.
    fits = "() => [document.documentElement.scrollHeight, document.documentElement.clientHeight]"
    _settled(frame, fits)
    height = ui.page.locator("iframe.mail-frame").bounding_box()["height"]
    content = frame.evaluate("() => document.documentElement.scrollHeight")
    assert abs(height - content) <= 4, (height, content)
    assert ui.page.locator(".attachments").count() == 0  # the picture is shown inline, not listed

    ui.page.get_by_role("link", name="Plain text").click()
    ui.page.wait_for_load_state("load")
    assert ui.page.locator("iframe").count() == 0
    assert ui.page.locator(".plain-body").inner_text().strip() == "Hello, plain version."
    assert "pic.png" in ui.page.locator(".attachments").inner_text()
    assert _problems(ui, None, strict=True) == []
