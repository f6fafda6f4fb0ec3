"""Inbox tabs in real Chromium: the strip above the list, moving a sender to another tab from the
message page, and the list with tabs at 1366×850 and 390×844, light and dark, English and German:
no horizontal overflow of the page on a phone (the strip scrolls within itself), no serious or
critical axe violations, a screenshot of each in test-artifacts/screens/ (tabs-*.png)."""

from __future__ import annotations

import pytest

from accounts.views_prefs import save_preferences
from mailbox.categories import Category
from mailbox.models import Message
from tests.factories import build_message, make_account, store_message
from tests.test_list_browser import DESKTOP, PHONE, TIMEOUT_MS, _check

pytestmark = pytest.mark.django_db(transaction=True)

BULK = b"List-Unsubscribe: <https://news.example/u>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
MAIL = [  # (extra header fields, sender, subject, body)
    (b"", "Ana Costa <ana@example.net>", "Trip to Lisbon", "Shall we go in March? The flights are cheap then."),
    (b"", "Ben Okafor <ben@example.org>", "Lunch on Friday?", "Noon at the usual place? I booked a table."),
    (
        BULK + b"Precedence: bulk\r\n",
        "Bergfreunde <news@bergfreunde.example>",
        "30 % Rabatt auf Zelte",
        "Nur bis Sonntag.",
    ),
    (BULK + b"X-Mailer: Mailchimp\r\n", "Farm Box <hello@farmbox.example>", "Spring vegetables are back", "Order now."),
    (
        BULK + b"X-Campaign: 4711\r\n",
        "Lumen Shop <offers@lumen.example>",
        "Last chance: sale ends tonight",
        "Up to 50 % off.",
    ),
    (
        b"X-SES-Outgoing: 2026.03.01\r\nFeedback-ID: 1:ses\r\n",
        "Rail <tickets@rail.example>",
        "Your ticket for Friday",
        "Seat 42.",
    ),
    (
        b"Auto-Submitted: auto-generated\r\n",
        "Bank <no-reply@bank.example>",
        "Security alert: new sign-in",
        "Was it you?",
    ),
    (
        b"List-Id: <users.lists.example>\r\nList-Post: <mailto:users@lists.example>\r\nPrecedence: list\r\n",
        "Dan Meyer <dan@example.com>",
        "Re: sieve filter not matching",
        "Try :contains instead of :is.",
    ),
]


@pytest.fixture
def tabbed(alice):
    save_preferences(alice, time_zone="Europe/Berlin", conversations=False, inbox_tabs=True)
    account = make_account(alice, label="Home")
    stored = []
    for i, (fields, sender, subject, body) in enumerate(MAIL * 2):
        raw = fields + build_message(f"{subject}", body, sender=sender, message_id=f"<t{i}@example.net>")
        stored.append(store_message(account, raw, f"u{i}"))
    return stored


def _names(links) -> list[str]:
    return links.evaluate_all("els => els.map(e => e.textContent.replace(/\\s+/g, ' ').trim())")


def test_tabs_and_moving_a_sender(browser_context, live_server, alice, tabbed):
    context = browser_context(DESKTOP)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(live_server.url + "/", wait_until="load")
        strip = page.get_by_role("navigation", name="Inbox tabs")
        links = strip.get_by_role("link")
        assert _names(links) == [
            "Primary 4 unread", "Updates 4 unread", "Promotions 6 unread", "Forums 2 unread"
        ]  # fmt: skip
        assert strip.locator("[aria-current=page]").inner_text().startswith("Primary")
        assert page.locator("#message-list > li").count() == 4
        strip.get_by_role("link", name="Promotions").click()
        page.wait_for_load_state("load")
        assert page.locator("#message-list > li").count() == 6
        assert strip.locator("[aria-current=page]").inner_text().startswith("Promotions")

        # The farm box is a friend's: its mail, stored and to come, goes to Primary.
        page.get_by_role("link", name="Spring vegetables are back").first.click()
        page.wait_for_load_state("load")
        page.locator(".tab-menu summary").click()
        _check(page, None, "tabs-move-menu-desktop", "desktop", [])
        page.get_by_role("button", name="Move to Primary").click()
        page.wait_for_load_state("load")
        assert "Mail from hello@farmbox.example now goes to Primary." in page.content()
        assert page.locator("#message-list > li").count() == 6  # Primary, with the farm box's two
        assert set(Message.objects.filter(from_email="hello@farmbox.example").values_list("category", flat=True)) == {
            None
        }
        # The opened one was read on the way.
        assert _names(links) == ["Primary 5 unread", "Updates 4 unread", "Promotions 4 unread", "Forums 2 unread"]
    finally:
        context.close()
    assert errors == []


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_tabs_fit_and_are_shot(browser_context, live_server, axe, alice, tabbed, size, scheme, locale):
    lang = locale[:2]
    problems: list[str] = []
    tag = f"{size}-{scheme}-{lang}"
    phone = size != "desktop"
    context = browser_context(PHONE if phone else DESKTOP, scheme, locale, has_touch=phone, is_mobile=phone)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(live_server.url + "/?tab=promotions", wait_until="load")
        strip = page.locator("nav.inbox-tabs")
        names = {"en": "Inbox tabs", "de": "Tabs des Posteingangs"}
        assert strip.get_attribute("aria-label") == names[lang]
        current = {"en": "Promotions", "de": "Werbung"}[lang]
        assert strip.locator("[aria-current=page] .tab-name").inner_text() == current
        assert page.locator("#message-list > li").count() == 6
        # The strip scrolls within itself; the page never does.
        box = strip.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"] + 0.5
        # The open tab is in sight, scrolled to on a phone.
        tab = strip.locator("[aria-current=page]").bounding_box()
        assert box["x"] <= tab["x"] and tab["x"] + tab["width"] <= box["x"] + box["width"] + 0.5, (tab, box)
        _check(page, axe, f"tabs-list-{tag}", size, problems)
        if size == "phone":
            strip.evaluate("el => el.scrollLeft = 0")
            _check(page, None, f"tabs-list-scrolled-{tag}", size, problems)
        message = Message.objects.filter(owner=alice, category=Category.PROMOTIONS).first()
        page.goto(f"{live_server.url}/message/{message.id}/", wait_until="load")
        page.locator(".tab-menu summary").click()
        _check(page, axe, f"tabs-message-{tag}", size, problems)
    finally:
        context.close()
    assert problems == []
