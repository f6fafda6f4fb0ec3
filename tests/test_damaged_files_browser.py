"""In Chromium: the message page of a damaged message, the page a damaged download answers, and the
dashboard's disk space alert, at desktop and phone sizes, light and dark, English and German; axe finds
no serious problem, nothing is wider than a phone.

Screenshots go to test-artifacts/screens/ (damaged-*.png).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailbox import store
from tests.factories import build_message, make_account, store_message
from tests.shellpages import overflow, page_for, screenshot, session_cookie
from tests.test_accessibility import AXE_OPTIONS, _describe

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = {
    "en": {
        "notice": "The original of this message is damaged",
        "download": "This file is damaged",
        "disk": "free on the disk of",
    },
    "de": {
        "notice": "Das Original dieser Nachricht ist beschädigt",
        "download": "Diese Datei ist beschädigt",
        "disk": "frei auf dem Datenträger von",
    },
}


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_damaged_message_download_and_disk_alert(browser, axe, live_server, alice, staff, settings, size, scheme, lang):
    account = make_account(alice, label="Home")
    message = store_message(
        account,
        build_message("Contract, signed copy", "Please find it attached.", sender="Dana <dana@example.net>"),
        "u1",
    )
    store.path_of(message.raw_path).unlink()
    words = WORDS[lang]
    problems: list[str] = []

    def check(page, name: str, text: str, where: str = "body") -> None:
        assert text in page.inner_text(where), f"{name}: {text!r} is not on the page"
        screenshot(page, f"damaged-{name}", size, scheme, lang)
        assert overflow(page) <= 0, f"{name}: the page is wider than the window"
        problems.extend(
            _describe(f"{name}-{size}-{lang}", scheme, axe.run(page, options=AXE_OPTIONS).response["violations"])
        )

    with page_for(browser, live_server, cookie=session_cookie(alice), size=size, scheme=scheme, lang=lang) as page:
        page.goto(live_server.url + reverse("mailbox:message", args=[message.id]), wait_until="load")
        check(page, "message", words["notice"])
        response = page.goto(live_server.url + reverse("mailbox:source", args=[message.id]), wait_until="load")
        assert response.status == 410
        check(page, "download", words["download"])

    settings.WEBPOP_DISK_ALERT_FREE_PERCENT = 100
    with page_for(browser, live_server, cookie=session_cookie(staff), size=size, scheme=scheme, lang=lang) as page:
        page.goto(live_server.url + reverse("ops:dashboard"), wait_until="load")
        check(page, "dashboard-alert", words["disk"], "#disk-alert")
        page.locator("#disks").scroll_into_view_if_needed()
        check(page, "dashboard-card", words["disk"], "#disk-alert")
    assert problems == [], "\n".join(problems)


FORWARD_WORDS = {
    "en": "The attachment “plan.txt” of this message is damaged",
    "de": "Der Anhang „plan.txt“ dieser Nachricht ist beschädigt",
}


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_forwarding_a_message_with_a_damaged_attachment_says_so(browser, axe, live_server, alice, size, scheme, lang):
    from mailbox.models import Attachment

    account = make_account(alice, label="Home")
    raw = build_message("Stand plan", "The plan is attached.", attachments=[("plan.txt", "text/plain", b"plan " * 50)])
    message = store_message(account, raw, "u1")
    path = store.path_of(Attachment.objects.get(message=message).stored_path)
    data = path.read_bytes()
    path.write_bytes(data[:10] + bytes([data[10] ^ 0x20]) + data[11:])  # one byte flipped
    with page_for(browser, live_server, cookie=session_cookie(alice), size=size, scheme=scheme, lang=lang) as page:
        page.goto(live_server.url + reverse("mailbox:message", args=[message.id]), wait_until="load")
        page.locator('button[name="kind"][value="forward"]').first.click()
        page.wait_for_load_state("load")
        assert page.url.endswith(reverse("mailbox:message", args=[message.id]))
        assert FORWARD_WORDS[lang] in page.inner_text("body")
        screenshot(page, "damaged-forward", size, scheme, lang)
        assert overflow(page) <= 0
        problems = _describe(
            f"forward-{size}-{lang}", scheme, axe.run(page, options=AXE_OPTIONS).response["violations"]
        )
    assert problems == [], "\n".join(problems)
