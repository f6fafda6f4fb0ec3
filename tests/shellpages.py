"""What the app-shell browser tests share: alice's mailbox, signed-in browser pages, screenshots.

Screenshots go to test-artifacts/screens/ (named page-size-scheme-language.png), for people to look at.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from mailbox import folders
from tests.browser import SIZES, new_context, session_cookie  # noqa: F401 (the shell tests import them from here)
from tests.factories import build_message, make_account, store_message

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"


def mailbox_of(alice) -> dict:
    """Two accounts, a folder of her own and a dozen messages (one in Hebrew, one with a long subject)."""
    home = make_account(alice, label="Home")
    make_account(alice, username="work-pop", label="Work")
    folders.create(alice.id, "Travel plans")
    subjects = [
        ("Garden party on Saturday", "Carol <carol@example.net>"),
        ("Quarterly report with the figures for the board meeting next Thursday afternoon", "Dan <dan@example.net>"),
        ("שלום, מה שלומך?", "Dana <dana@example.co.il>"),
        ("Lunch?", "Erin <erin@example.net>"),
        ("Your order has shipped", "Shop <orders@shop.example>"),
        ("Re: Holiday pictures", "Frank <frank@example.net>"),
        ("Invoice 2026-117", "Billing <billing@example.com>"),
        ("Book club: next month's pick", "Grace <grace@example.net>"),
    ]
    messages = []
    for day, (subject, sender) in enumerate(subjects):
        raw = build_message(
            subject,
            "Hello Alice,\n\nA few lines of text, as mail has.\n\nBest,\n" + sender.split()[0],
            sender=sender,
            date=f"Thu, {26 - day:02d} Nov 2026 09:00:00 +0000",
        )
        messages.append(store_message(home, raw, f"u-{day}"))
    return {"account": home, "messages": messages}


@contextlib.contextmanager
def page_for(
    browser, live_server, *, cookie: str | None, size: str = "desktop", scheme: str = "light", lang: str = "en"
) -> Iterator:
    context = new_context(browser, live_server.url, size=size, scheme=scheme, locale=None, language=lang)
    if cookie:
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        yield page
    finally:
        context.close()


def screenshot(page, name: str, size: str, scheme: str, lang: str) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}-{size}-{scheme}-{lang}.png"
    page.screenshot(path=str(path))
    return path


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrolling)."""
    return page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
