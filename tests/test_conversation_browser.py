"""A conversation in real Chromium: inbox → conversation → expand an earlier message → its photo in the
lightbox → back to the list, at a phone's size (390×844) and a desk's (1366×850), light and dark,
English and German; the keyboard (j/k, o, r); a right-to-left message in a thread.

Checked on the way: earlier messages collapsed to a line and the newest one expanded, quoted text
folded behind "…", a collapsed message expanded with the keyboard loads its body in place, the page
never scrolls sideways, axe finds no serious or critical problem.

Screenshots go to test-artifacts/screens/conversation-*.png. One Chromium per module (tests/browser.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbox import actions
from mailbox.models import Message
from tests import attachment_samples as samples
from tests.factories import build_message, make_account, store_message

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
SIZES = {"1366": {"width": 1366, "height": 850}, "390": {"width": 390, "height": 844}}
ARABIC = (
    "مرحبا سارة،\n\nنعم، يناسبني يوم الجمعة في المكتب الرئيسي.\n\n"
    "في الأمس كتبت سارة:\n> هل يناسبك يوم الجمعة؟\n\n-- \nأحمد"
)

pytestmark = pytest.mark.django_db(transaction=True)


def answering(raw: bytes, parent: str) -> bytes:
    return raw.replace(b"\r\n\r\n", f"\r\nIn-Reply-To: {parent}\r\nReferences: {parent}\r\n\r\n".encode(), 1)


@pytest.fixture
def thread(alice) -> list[Message]:
    """Four messages about a garden party: the first brings a photo, the newest (unread) quotes the one before."""
    account = make_account(alice, label="Home")
    photo = [("garden.jpg", "image/jpeg", samples.image("JPEG", (1200, 800), quality=85))]
    texts = [
        ("Carol <carol@example.net>", "Garden party", "Here is the garden as it looks today.", photo),
        ("Dan <dan@example.net>", "Re: Garden party", "Lovely! Shall we put the tables under the trees?", []),
        ("Carol <carol@example.net>", "Re: Garden party", "Yes, and the lights along the fence.", []),
        (
            "Dan <dan@example.net>",
            "Re: Garden party",
            "Then it is settled: Saturday at six.\n\nOn Friday Carol wrote:\n> Yes, and the lights along the fence."
            "\n> Carol\n\n-- \nDan Example\nGarden committee",
            [],
        ),
    ]
    messages = []
    for n, (sender, subject, body, files) in enumerate(texts):
        raw = build_message(
            subject,
            body,
            sender=sender,
            date=f"Thu, {19 + n} Nov 2026 1{n}:00:00 +0000",
            message_id=f"<garden-{n}@example.net>",
            attachments=files,
        )
        if n:
            raw = answering(raw, f"<garden-{n - 1}@example.net>")
        messages.append(store_message(account, raw, f"garden-{n}"))
    store_message(account, build_message("Invoice 42", "Unrelated.", date="Mon, 16 Nov 2026 09:00:00 +0000"), "other")
    actions.set_seen(alice.id, [m.id for m in messages[:3]], True)
    return messages


@pytest.fixture
def tab(browser_context):
    """A logged-in tab: ``tab(size, scheme, language)``; script errors and console errors fail the test."""
    problems = []

    def open_tab(size="390", scheme="light", language="en"):
        context = browser_context(SIZES[size], scheme, language, language=language)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
        return page

    yield open_tab
    assert problems == []


def fits(page, where: str) -> None:
    scroll, inner = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert scroll <= inner, f"{where}: the page scrolls sideways ({scroll} > {inner})"


def shot(page, name: str, *, full_page: bool = True) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"conversation-{name}.png"), full_page=full_page)


def serious(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"resultTypes": ["violations"], "iframes": False})
    return [
        f"{v['id']}: {[' '.join(map(str, n.get('target', []))) for n in v['nodes'][:5]]}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def items(page):
    return page.locator("details.conv-message")


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["390", "1366"])
def test_inbox_to_conversation_to_photo_and_back(tab, live_server, thread, size, scheme, language):
    tag = f"{size}-{scheme}-{language}"
    page = tab(size, scheme, language)
    parts = []  # messages fetched to be expanded in place
    page.on("request", lambda r: "/part/" in r.url and parts.append(r.url))
    page.goto(f"{live_server.url}/", wait_until="load")
    page.locator("#message-list > li > a", has_text="Garden party").click()
    page.wait_for_url(f"{live_server.url}/message/{thread[-1].id}/")

    # Earlier messages on one line each, the newest (opened, unread) expanded, its quotation folded.
    assert [d.get_attribute("open") is not None for d in items(page).all()] == [False, False, False, True]
    assert items(page).nth(0).locator(".conv-snippet").inner_text().startswith("Here is the garden")
    newest = items(page).nth(3)
    assert newest.locator(".conv-body").get_by_text("Then it is settled: Saturday at six.").is_visible()
    assert newest.locator(".conv-body").get_by_text("On Friday Carol wrote:").is_hidden()
    fold = newest.locator(".fold-toggle")
    assert fold.get_attribute("aria-expanded") == "false"
    assert newest.get_by_role("button", name="Allen antworten" if language == "de" else "Reply all").count() == 1
    fits(page, f"conversation ({tag})")
    # The conversation's actions take one row, on a phone too.
    tops = page.locator(".message-actions > button, .message-actions > .menu > summary").evaluate_all(
        "items => items.map(e => Math.round(e.getBoundingClientRect().top))"
    )
    assert len(tops) >= 6 and len(set(tops)) == 1, tops
    assert serious(page) == []
    assert parts == []  # what the page shows expanded came with it
    shot(page, f"collapsed-{tag}")

    # The first message, expanded with the keyboard: its body and photo load in place.
    first = items(page).nth(0)
    first.locator("summary").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('details.conv-message').dataset.loaded")
    assert first.locator(".conv-body").get_by_text("Here is the garden as it looks today.").is_visible()
    assert page.url == f"{live_server.url}/message/{thread[-1].id}/"  # no page load
    assert parts == [f"{live_server.url}/message/{thread[0].id}/part/"]
    fold.click()
    assert newest.locator(".conv-body").get_by_text("On Friday Carol wrote:").is_visible()
    fits(page, f"expanded ({tag})")
    assert serious(page) == []
    shot(page, f"expanded-{tag}")

    # Its photo in the lightbox, then back to the list.
    first.locator("a[data-lightbox]", has_text="garden.jpg").click()
    page.wait_for_function("() => document.querySelector('dialog.lightbox').dataset.loaded")
    assert page.locator("dialog.lightbox").is_visible()
    fits(page, f"lightbox ({tag})")
    shot(page, f"lightbox-{tag}", full_page=False)
    page.keyboard.press("Escape")
    assert not page.locator("dialog.lightbox").is_visible()
    page.locator(".message-nav a").first.click()
    page.wait_for_url(f"{live_server.url}/")
    assert Message.objects.get(id=thread[0].id).seen and Message.objects.get(id=thread[-1].id).seen


def test_the_keyboard_moves_through_the_conversation_and_replies(tab, live_server, thread):
    page = tab("1366")
    page.goto(f"{live_server.url}/message/{thread[-1].id}/", wait_until="load")
    focused = "() => document.activeElement.closest('li.conv-item')?.id"
    page.keyboard.press("k")
    assert page.evaluate(focused) == f"m{thread[2].id}"
    page.keyboard.press("p")
    assert page.evaluate(focused) == f"m{thread[1].id}"
    page.keyboard.press("o")  # expands the message the reader is at
    page.wait_for_function(f"() => document.querySelector('#m{thread[1].id} details').dataset.loaded")
    assert items(page).nth(1).locator(".conv-body").get_by_text("Shall we put the tables under the trees?").is_visible()
    page.keyboard.press("o")
    assert items(page).nth(1).get_attribute("open") is None
    page.keyboard.press("j")
    page.keyboard.press("n")
    assert page.evaluate(focused) == f"m{thread[3].id}"
    page.keyboard.press("?")
    assert page.locator("#shortcut-help").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("#shortcut-help").is_hidden()
    # r: a reply to the message the reader is at (its form's POST; the compose pages take it from there).
    reply = f"/compose/reply/{thread[3].id}/"
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith(reply)) as sent:
        page.keyboard.press("r")
    assert "kind=reply" in sent.value.post_data and "kind=reply_all" not in sent.value.post_data
    page.wait_for_url(lambda url: "/compose/" in url and "/reply/" not in url)  # the request is over
    page.wait_for_load_state("load")


@pytest.mark.parametrize(("size", "scheme", "language"), [("390", "dark", "de"), ("1366", "light", "en")])
def test_a_right_to_left_message_in_a_thread_reads_right_to_left(tab, live_server, thread, size, scheme, language):
    raw = answering(
        build_message(
            "Re: Garden party",
            ARABIC,
            sender="أحمد <ahmed@example.net>",
            date="Mon, 23 Nov 2026 09:00:00 +0000",
            message_id="<garden-ar@example.net>",
        ),
        "<garden-3@example.net>",
    )
    arabic = store_message(thread[0].account, raw, "garden-ar")
    page = tab(size, scheme, language)
    page.goto(f"{live_server.url}/message/{arabic.id}/", wait_until="load")
    item = page.locator(f"#m{arabic.id}")
    body = item.locator(".plain-body")
    assert body.evaluate("e => getComputedStyle(e).direction") == "rtl"
    paragraph = body.locator("p", has_text="يناسبني يوم الجمعة")
    edges = paragraph.evaluate(
        """e => { const r = document.createRange(); r.selectNodeContents(e);
                  const t = r.getBoundingClientRect(), b = e.getBoundingClientRect();
                  return [t.right, b.right - parseFloat(getComputedStyle(e).paddingRight)]; }"""
    )
    assert abs(edges[0] - edges[1]) <= 2, edges  # against the right edge
    assert item.locator(".conv-from").evaluate("e => getComputedStyle(e).direction") == "rtl"
    assert item.locator(".conv-body").get_by_text("هل يناسبك يوم الجمعة؟").is_hidden()  # the quotation folded
    fits(page, f"rtl ({size})")
    assert serious(page) == []
    shot(page, f"rtl-{size}-{scheme}-{language}")
