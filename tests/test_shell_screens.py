"""The app shell as people see it: screenshots in real Chromium at desk and phone size, light and
dark, English and German (test-artifacts/screens/), and no sideways scrolling on a phone."""

from __future__ import annotations

import pytest

from tests.shellpages import mailbox_of, overflow, page_for, screenshot, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = {
    "inbox": lambda mail: "/",
    "message": lambda mail: f"/message/{mail['messages'][1].id}/",
    "search": lambda mail: "/?q=report",
    "preferences": lambda mail: "/accounts/preferences/",
    "compose": lambda mail: "/compose/",
    "accounts": lambda mail: "/accounts/",
    "not-found": lambda mail: "/message/999999/",
}


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_screens(browser, live_server, alice, size, scheme, lang):
    mail = mailbox_of(alice)
    cookie = session_cookie(alice)
    problems = []
    with page_for(browser, live_server, cookie=cookie, size=size, scheme=scheme, lang=lang) as page:
        for name, path in PAGES.items():
            page.goto(live_server.url + path(mail), wait_until="load")
            screenshot(page, name, size, scheme, lang)
            if size == "phone" and overflow(page) > 0:
                problems.append(f"{name}: {overflow(page)} px wider than the phone")
        if size == "phone":
            page.goto(live_server.url + "/", wait_until="load")
            page.click("#drawer-toggle")
            page.locator("#sidebar").wait_for(state="visible")
            page.wait_for_timeout(300)  # the drawer's slide, for the picture only
            screenshot(page, "drawer", size, scheme, lang)
            page.keyboard.press("Escape")
            page.locator("#sidebar").wait_for(state="hidden")
            page.click(".more-menu summary")
            screenshot(page, "more-menu", size, scheme, lang)
    assert problems == []
