"""Snooze, the virtual views and saved searches in real Chromium.

One journey with the mouse and the keyboard (snooze from the message page and from the list, pick a
date and time, undo, the Snoozed view, "g" shortcuts, saving a search and opening it from the
sidebar), then every new page and menu at 1366×850 and 390×844, light and dark, English and German:
no horizontal overflow on a phone, no serious or critical axe violations, and a screenshot of each
in test-artifacts/screens/ (snooze-*.png).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from accounts.views_prefs import save_preferences
from mailbox import actions
from mailbox.models import Folder, Message, SavedSearch
from tests.factories import build_message, make_account, store_message

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
DESKTOP = {"width": 1366, "height": 850}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000
BLOCKING = {"serious", "critical"}

pytestmark = pytest.mark.django_db(transaction=True)


def _reply(original_id: str, subject: str, body: str, sender: str, date: str) -> bytes:
    raw = build_message(subject, body, sender=sender, date=date)
    return raw.replace(b"\r\n\r\n", f"\r\nIn-Reply-To: {original_id}\r\n\r\n".encode(), 1)


@pytest.fixture
def mail(alice):
    """alice in Berlin with a conversation, a starred report, a few more, one snoozed, a saved search."""
    save_preferences(alice, time_zone="Europe/Berlin", conversations=True)
    account = make_account(alice, label="Home")
    day = "Thu, 26 Nov 2026"
    stored = {
        "trip": store_message(
            account,
            build_message(
                "Trip to Lisbon", "Shall we go in March?", sender="Ana Costa <ana@example.net>",
                date=f"{day} 08:00:00 +0000", message_id="<lisbon@example.net>",
            ),
            "u1",
        ),
        "trip-reply": store_message(
            account,
            _reply(
                "<lisbon@example.net>", "Re: Trip to Lisbon", "March works.", "Ben <ben@example.net>",
                f"{day} 09:30:00 +0000",
            ),
            "u2",
        ),
        "report": store_message(
            account,
            build_message(
                "Quarterly report", "The figures are attached.", sender="Greta <greta@example.net>",
                date=f"{day} 09:00:00 +0000", attachments=[("report.pdf", "application/pdf", b"%PDF-1.4 x")],
            ),
            "u3",
        ),
        "lunch": store_message(
            account, build_message("Lunch on Friday?", "Noon at the usual place?", date=f"{day} 10:00:00 +0000"), "u4"
        ),
        "tickets": store_message(
            account,
            build_message("Your train tickets", "Seat 42, coach 7.", sender="Rail <tickets@rail.example>",
                          date=f"{day} 11:00:00 +0000"),
            "u5",
        ),
        "plumber": store_message(
            account, build_message("Call the plumber", "The tap drips.", date=f"{day} 07:00:00 +0000"), "u6"
        ),
        "arabic": store_message(
            account,
            build_message("مرحبا بكم في النشرة", "نص الرسالة", sender="نشرة <news@example.org>",
                          date=f"{day} 06:00:00 +0000"),
            "u7",
        ),
    }  # fmt: skip
    Message.objects.filter(id=stored["report"].id).update(flagged=True)
    actions.snooze(alice.id, [stored["plumber"].id], timezone.now() + dt.timedelta(days=2, hours=3))
    actions.save_search(alice.id, "Reports", "report")
    return stored


def _rows(page) -> list[str]:
    return [text.strip() for text in page.locator("#message-list > li .subject").all_inner_texts()]


def test_snooze_views_and_saved_searches_with_mouse_and_keyboard(browser_context, live_server, alice, mail):
    context = browser_context(DESKTOP)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        url = live_server.url
        page.goto(f"{url}/", wait_until="load")
        sidebar = page.locator("nav.folders")
        for label in ("Starred", "Snoozed", "Unread", "All mail", "Reports"):
            assert sidebar.get_by_role("link", name=label, exact=True).count() == 1, label
        assert "Call the plumber" not in _rows(page)

        # From the message page: the menu, "Tomorrow".
        page.get_by_role("link", name=re.compile("Lunch on Friday")).click()
        page.wait_for_url(re.compile(r"/message/\d+/$"))
        page.locator("details.snooze-menu > summary").click()
        tomorrow = page.locator(".snooze-panel button", has_text="Tomorrow")
        assert tomorrow.is_visible()
        assert tomorrow.locator("time").inner_text().endswith("08:00")
        tomorrow.click()
        page.wait_for_url(f"{url}/")
        assert "1 message snoozed until" in page.locator(".flash").inner_text()
        assert "Lunch on Friday?" not in _rows(page)

        # "g b": the Snoozed view, soonest back first, with the time each comes back.
        page.keyboard.press("g")
        page.keyboard.press("b")
        page.wait_for_url(f"{url}/view/snoozed/")
        assert _rows(page) == ["Lunch on Friday?", "Call the plumber"]
        assert page.locator("#message-list > li").first.locator("time").inner_text().startswith("until ")

        # From the list with the keyboard: "j" to a row, "b" opens the menu on it, Escape closes it.
        page.goto(f"{url}/", wait_until="load")
        page.keyboard.press("j")
        page.keyboard.press("b")
        menu = page.locator("#bulk-form details.snooze-menu")
        assert menu.get_attribute("open") is not None
        first_row = page.locator("#message-list > li").first
        assert first_row.locator("input[name=ids]").is_checked()
        assert page.evaluate("document.activeElement.closest('.snooze-panel') !== null")
        page.keyboard.press("Escape")
        assert menu.get_attribute("open") is None
        first_row.locator("input[name=ids]").uncheck()

        # From the list with the mouse: pick a date and time.
        tickets = page.locator("#message-list > li", has_text="Your train tickets")
        tickets.locator("input[name=ids]").check()
        menu.locator("summary").click()
        menu.get_by_role("button", name="Pick date and time…").click()
        page.wait_for_url(f"{url}/messages/snooze/")
        assert "Europe/Berlin" in page.locator(".snooze-pick").inner_text()
        when = (timezone.now() + dt.timedelta(days=20)).strftime("%Y-%m-%dT09:15")
        page.fill("#snooze-until", when)
        page.get_by_role("button", name="Snooze", exact=True).click()
        page.wait_for_url(f"{url}/")
        assert "Your train tickets" not in _rows(page)
        snoozed = Message.objects.get(id=mail["tickets"].id)
        assert snoozed.folder == Folder.SNOOZED
        assert snoozed.snoozed_until == dt.datetime.fromisoformat(when).replace(tzinfo=ZoneInfo("Europe/Berlin"))

        # Undo brings it back.
        page.locator(".undo-bar button").click()
        page.wait_for_load_state("load")
        assert "Your train tickets" in _rows(page)

        # Save a search and open it from the sidebar.
        page.fill("#q", "lisbon")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"\?q=lisbon$"))
        page.fill("#saved-search-name", "Lisbon trip")
        page.get_by_role("button", name="Save this search").click()
        page.wait_for_load_state("load")
        assert SavedSearch.objects.filter(owner=alice, name="Lisbon trip", query="lisbon").exists()
        page.goto(f"{url}/view/all/", wait_until="load")
        page.locator("nav.folders").get_by_role("link", name="Lisbon trip").click()
        page.wait_for_url(re.compile(r"\?q=lisbon$"))
        assert page.locator("nav.folders a[aria-current=page]").inner_text() == "Lisbon trip"
        assert "Saved search “Lisbon trip”" in page.locator(".saved-search").inner_text()

        # "g s": Starred.
        page.keyboard.press("g")
        page.keyboard.press("s")
        page.wait_for_url(f"{url}/view/starred/")
        assert _rows(page) == ["Quarterly report"]
        assert page.locator("#message-list > li .subject .clip").count() == 1  # with its attachment clip
        assert Message.objects.get(id=mail["report"].id).flagged  # "s" after "g" did not touch the list
    finally:
        context.close()
    assert errors == []


# --- Every new page and menu: sizes, themes, languages ------------------------------------------------


def _open_menu(page) -> None:
    page.locator("details.snooze-menu > summary").first.click()
    assert page.locator(".snooze-panel").first.is_visible()


PAGES = {
    # name: (path or a message key, what to do once loaded)
    "inbox-menu": ("/", _open_menu),
    "message-menu": ("message:lunch", _open_menu),
    "snoozed": ("/view/snoozed/", None),
    "starred": ("/view/starred/", None),
    "search-saved": ("/?q=report", None),
    "search-unsaved": ("/?q=lisbon", None),
}


def _axe_problems(axe, page, name: str) -> list[str]:
    results = axe.run(page, options={"resultTypes": ["violations"], "iframes": False})
    problems = []
    for violation in results.response["violations"]:
        if violation.get("impact") in BLOCKING:
            for node in violation["nodes"][:5]:
                problems.append(f"{name}: {violation['id']} ({violation['impact']}) {node.get('target')}")
    return problems


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_new_page_fits_reads_and_is_shot(browser_context, live_server, axe, alice, mail, scheme, locale):
    SCREENS.mkdir(parents=True, exist_ok=True)
    lang = locale[:2]
    problems: list[str] = []
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser_context(viewport, scheme, locale)
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            for name, (path, prepare) in PAGES.items():
                if path.startswith("message:"):
                    path = f"/message/{mail[path.split(':')[1]].id}/"
                response = page.goto(live_server.url + path, wait_until="load")
                assert response is not None and response.status == 200, (name, response and response.status)
                assert page.locator("html").get_attribute("lang") == lang
                if prepare:
                    prepare(page)
                _check_and_shoot(page, axe, f"{name}-{size}-{scheme}-{lang}", size, problems)
            # The page to pick a date and time (a POST from the menu).
            page.goto(f"{live_server.url}/message/{mail['lunch'].id}/", wait_until="load")
            _open_menu(page)
            page.locator(".snooze-panel button[name=pick]").click()
            page.wait_for_url(f"{live_server.url}/messages/snooze/")
            _check_and_shoot(page, axe, f"pick-{size}-{scheme}-{lang}", size, problems)
        finally:
            context.close()
    assert problems == [], "\n".join(problems)


def _check_and_shoot(page, axe, name: str, size: str, problems: list[str]) -> None:
    wide = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    if wide[0] > wide[1]:
        problems.append(f"{name}: {wide[0]}px wide in a {wide[1]}px window")
    if size == "phone":
        # The open menu is a sheet inside the screen.
        panel = page.locator(".snooze-panel").first
        if panel.count() and panel.is_visible():
            box = panel.bounding_box()
            if box["x"] < 0 or box["x"] + box["width"] > page.viewport_size["width"]:
                problems.append(f"{name}: the snooze menu leaves the screen ({box})")
    else:
        problems += _axe_problems(axe, page, name)
    page.screenshot(path=str(SCREENS / f"snooze-{name}.png"), full_page=True)
