"""The message list in real Chromium: a row's star, its actions on hover, "Select all N" with undo.

One journey with the mouse and the keyboard on a desktop (star in place, hover and focus actions,
select all 120 of an Inbox listed 50 at a time, archive them in the background, undo), then the list
at 1366×850 and 390×844, light and dark, English and German: the row actions only where there is a
pointer that hovers, no horizontal overflow on a phone, no serious or critical axe violations, right
to left too, and a screenshot of each state in test-artifacts/screens/ (list-*.png).

The test plays the worker: the page's job is recorded when the web enqueues it (conftest's
``bulk_enqueued``) and run here with mailbox.bulkjobs.run, as the Celery task would.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.views_prefs import save_preferences
from mailbox import bulkjobs
from mailbox.models import Folder, Message
from tests.factories import make_account

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
DESKTOP = {"width": 1366, "height": 850}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000
BLOCKING = {"serious", "critical"}
COUNT = 120  # more than a page (50)

pytestmark = pytest.mark.django_db(transaction=True)

PEOPLE = [
    ("Ana Costa", "Trip to Lisbon", "Shall we go in March? The flights are cheap then."),
    ("Greta Berg", "Quarterly report", "The figures are attached; the summary is on page two."),
    ("Rail Tickets", "Your train tickets", "Seat 42, coach 7. Show this code at the gate."),
    ("Ben Okafor", "Lunch on Friday?", "Noon at the usual place? I booked a table."),
    ("نشرة", "مرحبا بكم في النشرة", "نص الرسالة"),
    ("Plumbing Co.", "Your appointment", "We will come on Tuesday between 8 and 10."),
]


@pytest.fixture
def inbox(alice):
    """alice in Berlin with 120 messages in her Inbox: today's, this year's and older, some unread and starred."""
    save_preferences(alice, time_zone="Europe/Berlin", conversations=False)
    account = make_account(alice, label="Home")
    now = timezone.now()
    rows = []
    for i in range(COUNT):
        name, subject, snippet = PEOPLE[i % len(PEOPLE)]
        rows.append(
            Message(
                owner=alice, account=account, uidl=f"u{i}", sha256="0" * 64, size=2000, raw_path="raw/x",
                from_name=name, from_email=f"person{i}@example.net", subject=f"{subject} #{i}", snippet=snippet,
                date=now - dt.timedelta(hours=3 * i), seen=i % 3 != 0, flagged=i == 1, has_attachments=i % 4 == 1,
            )
        )  # fmt: skip
    return Message.objects.bulk_create(rows)


def _work(bulk_enqueued: list[int], done: int) -> int:
    """As a worker: wait for the page's job to be enqueued, run it; returns its id."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while len(bulk_enqueued) <= done:
        assert time.monotonic() < deadline, "no job was enqueued"
        time.sleep(0.05)
    job_id = bulk_enqueued[done]
    assert bulkjobs.run(job_id) == "done"
    return job_id


def _row(page, index: int = 0):
    return page.locator("#message-list > li").nth(index)


def test_star_hover_actions_and_select_all_with_undo(browser_context, live_server, alice, inbox, bulk_enqueued):
    context = browser_context(DESKTOP)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        url = live_server.url
        page.goto(f"{url}/", wait_until="load")
        assert page.locator("#message-list > li").count() == 50
        page.evaluate("window.stayed = true")  # gone if the page reloads

        # The star: in place, no reload; the keyboard's "s" on the current row too.
        first = _row(page, 0)
        star = first.locator(".row-star")
        assert star.get_attribute("aria-pressed") == "false" and star.get_attribute("aria-label") == "Star"
        star.click()
        first.locator(".row-star[aria-pressed=true]").wait_for()
        assert star.get_attribute("aria-label") == "Remove star" and "starred" in first.get_attribute("class")
        assert Message.objects.get(id=inbox[0].id).flagged
        assert page.evaluate("window.stayed === true")
        _row(page, 2).locator("a").focus()
        page.keyboard.press("s")
        page.locator(f"#message-list > li.starred[data-id='{inbox[2].id}']").wait_for()
        assert Message.objects.get(id=inbox[2].id).flagged and page.evaluate("window.stayed === true")

        # Row actions: hidden, shown on hover, and on keyboard focus within the row.
        second = _row(page, 1)
        assert not second.locator(".row-actions").is_visible()
        second.hover()
        assert second.locator(".row-actions").is_visible()
        archive = second.get_by_role("button", name="Archive")
        assert archive.is_visible()
        page.mouse.move(0, 0)
        assert not second.locator(".row-actions").is_visible()
        _row(page, 3).locator("a").focus()
        assert _row(page, 3).locator(".row-actions").is_visible()
        page.keyboard.press("Tab")  # from the row's link into its actions
        assert page.evaluate("document.activeElement.closest('.row-actions') !== null")
        _check(page, None, "list-journey-hover", "desktop", [])

        # A row's archive posts like the toolbar: the list comes back with undo.
        second.hover()
        archive.click()
        page.wait_for_load_state("load")
        assert Message.objects.get(id=inbox[1].id).folder == Folder.ARCHIVE
        page.locator(".undo-bar button").click()
        page.wait_for_load_state("load")
        assert Message.objects.get(id=inbox[1].id).folder == Folder.INBOX

        # Select all: the page, then all 120 in the Inbox, archived in the background.
        page.locator("#select-all").check()
        bar = page.locator("#select-all-bar")
        bar.wait_for(state="visible")
        assert "All 50 messages on this page are selected." in bar.inner_text()
        bar.get_by_role("button", name="Select all 120 messages in Inbox").click()
        assert "All 120 messages in Inbox are selected." in bar.inner_text()
        page.locator(".list-toolbar").get_by_role("button", name="Archive").click()
        page.wait_for_load_state("load")
        assert "Working on it: 0 of 120 messages" in page.locator("#bulk-job").inner_text()
        assert Message.objects.filter(owner=alice, folder=Folder.INBOX).count() == COUNT  # nothing done in the request
        _work(bulk_enqueued, 0)
        page.locator("#bulk-job", has_text="120 messages moved to Archive.").wait_for()  # polled, then reloaded
        assert Message.objects.filter(owner=alice, folder=Folder.ARCHIVE).count() == COUNT
        assert page.locator("#message-list").count() == 0

        # Undo: all 120 back, also in the background.
        page.locator(".undo-bar button").click()
        page.wait_for_load_state("load")
        _work(bulk_enqueued, 1)
        page.locator("#bulk-job", has_text="Undone: 120 restored.").wait_for()
        assert Message.objects.filter(owner=alice, folder=Folder.INBOX).count() == COUNT
        assert page.locator("#message-list > li").count() == 50

        # Unticking one row leaves "all": the bar goes.
        page.locator("#select-all").check()
        bar.wait_for(state="visible")
        _row(page, 0).locator("input[name=ids]").uncheck()
        assert not bar.is_visible() and page.locator("#select-scope").input_value() == ""
    finally:
        context.close()
    assert errors == []


# --- Sizes, themes, languages ------------------------------------------------------------------------


def _axe_problems(axe, page, name: str) -> list[str]:
    results = axe.run(page, options={"resultTypes": ["violations"], "iframes": False})
    problems = []
    for violation in results.response["violations"]:
        if violation.get("impact") in BLOCKING:
            for node in violation["nodes"][:5]:
                problems.append(f"{name}: {violation['id']} ({violation['impact']}) {node.get('target')}")
    return problems


def _check(page, axe, name: str, size: str, problems: list[str]) -> None:
    wide = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    if wide[0] > wide[1]:
        problems.append(f"{name}: {wide[0]}px wide in a {wide[1]}px window")
    if axe is not None:
        problems += _axe_problems(axe, page, name)
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"))  # the viewport: what a person sees first


TEXTS = {
    "en": {"archive": "Archive", "offer": "Select all 120 messages in Inbox", "done": "120 messages moved to Archive."},
    "de": {
        "archive": "Archiv",
        "offer": "Alle 120 Nachrichten in „Posteingang“ auswählen",
        "done": "120 Nachrichten in den Ordner „Archiv“ verschoben.",
    },
}


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_list_fits_reads_and_is_shot(
    browser_context, live_server, axe, alice, inbox, bulk_enqueued, size, scheme, locale
):
    lang = locale[:2]
    texts = TEXTS[lang]
    problems: list[str] = []
    tag = f"{size}-{scheme}-{lang}"
    phone = size != "desktop"
    context = browser_context(PHONE if phone else DESKTOP, scheme, locale, has_touch=phone, is_mobile=phone)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(live_server.url + "/", wait_until="load")
        assert page.locator("html").get_attribute("lang") == lang
        row = _row(page, 1)
        row.hover()
        # Actions at the row's end where a pointer hovers; never on a phone, not even with focus.
        assert row.locator(".row-actions").is_visible() == (size == "desktop")
        row.locator("a").focus()
        assert row.locator(".row-actions").is_visible() == (size == "desktop")
        assert row.locator(".row-star").is_visible()
        _check(page, axe, f"list-rows-{tag}", size, problems)

        # Right to left: the actions sit at the row's other end, dates keep their own order, nothing overflows.
        page.evaluate("document.documentElement.dir = 'rtl'")
        assert page.evaluate("getComputedStyle(document.querySelector('#message-list time')).direction") == "ltr"
        row.hover()
        if size == "desktop":
            actions = row.locator(".row-actions").bounding_box()
            box = row.bounding_box()
            assert actions["x"] < box["x"] + box["width"] / 2, (actions, box)
        _check(page, None, f"list-rtl-{tag}", size, problems)
        page.evaluate("document.documentElement.dir = 'ltr'")

        page.locator("#select-all").check()
        bar = page.locator("#select-all-bar")
        bar.wait_for(state="visible")
        bar.get_by_role("button", name=texts["offer"]).click()
        _check(page, axe, f"list-select-all-{tag}", size, problems)

        toolbar = page.locator(".list-toolbar")
        toolbar.get_by_role("button", name=re.compile(f"^{texts['archive']}")).click()
        page.wait_for_load_state("load")
        page.locator("#bulk-job progress").wait_for()
        _check(page, axe, f"list-job-running-{tag}", size, problems)
        _work(bulk_enqueued, 0)
        page.locator("#bulk-job", has_text=texts["done"]).wait_for()
        _check(page, axe, f"list-job-done-{tag}", size, problems)
    finally:
        context.close()
    assert problems == [], "\n".join(problems)
