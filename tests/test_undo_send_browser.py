"""Reply, Send, Undo inside the window, Send again and let it go, in Chromium at 1366x850 and 390x844, light and
dark, English and German: nothing reaches the SMTP server before the window ends, the editor comes back with the
text, exactly one message arrives, and Drafts is empty afterwards. Screenshots in test-artifacts/screens/ (undo-*).

No worker runs here: publishing is switched off and the test delivers as the worker would once the window ended.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import Profile
from outgoing import send, tasks
from outgoing.models import OutgoingMessage, OutgoingState
from tests.factories import build_message, store_message
from tests.test_snooze_browser import DESKTOP, PHONE, TIMEOUT_MS, _axe_problems

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
pytestmark = pytest.mark.django_db(transaction=True)


def _check(page, axe, name: str, size: str, problems: list[str]) -> None:
    wide = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    if wide[0] > wide[1]:
        problems.append(f"{name}: {wide[0]}px wide in a {wide[1]}px window")
    if size == "desktop":
        problems += _axe_problems(axe, page, name)
    page.screenshot(path=str(SCREENS / f"undo-{name}.png"), full_page=True)


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_reply_undo_then_send_once(
    browser_context, live_server, axe, alice, smtp_account, smtp_server, monkeypatch, size, scheme, locale
):
    SCREENS.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(tasks, "publish_send", lambda outgoing_id, countdown=0: None)
    Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 5, "compose_format": "plain"})
    account = smtp_account()
    original = store_message(
        account,
        build_message("Dinner on Saturday?", "Are you free?", sender="Carol <carol@example.net>"),
        "u1",
    )
    tag = f"{size}-{scheme}-{locale[:2]}"
    problems: list[str] = []
    context = browser_context(DESKTOP if size == "desktop" else PHONE, scheme, locale)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{live_server.url}/message/{original.id}/")
        page.locator("button[name=kind][value=reply]").click()
        page.wait_for_url(re.compile(r"/compose/\d+/$"))
        draft_url = page.url
        body = page.locator("#id_body")
        body.focus()
        body.press("Control+Home")
        body.type("Yes, at eight.")
        _check(page, axe, f"reply-{tag}", size, problems)

        page.locator("button[name=action][value=send]").click()
        page.wait_for_url(f"{live_server.url}/message/{original.id}/")
        undo = page.locator(".undo-send button")
        assert undo.is_visible()
        _check(page, axe, f"banner-{tag}", size, problems)
        outgoing = OutgoingMessage.objects.get(owner=alice)
        assert send.deliver(outgoing.id) is send.Outcome.EARLY and smtp_server.received == []
        undo.click()
        page.wait_for_url(draft_url)
        assert page.locator("#id_body").input_value().startswith("Yes, at eight.")
        assert OutgoingMessage.objects.get(id=outgoing.id).state == OutgoingState.DRAFT
        _check(page, axe, f"undone-{tag}", size, problems)

        page.locator("button[name=action][value=send]").click()
        page.wait_for_url(f"{live_server.url}/message/{original.id}/")
        due = OutgoingMessage.objects.get(id=outgoing.id).next_attempt_at
        assert send.deliver(outgoing.id) is send.Outcome.EARLY and smtp_server.received == []
        while timezone.now() < due:  # the window runs out; then the worker's try goes through
            time.sleep(0.2)
        assert send.deliver(outgoing.id) is send.Outcome.SENT
        [got] = smtp_server.received
        assert b"Yes, at eight." in got.data

        page.goto(f"{live_server.url}/compose/drafts/")
        assert page.locator(".outgoing-list li").count() == 0 and page.locator(".empty").is_visible()
        _check(page, axe, f"drafts-{tag}", size, problems)
        assert OutgoingMessage.objects.filter(owner=alice, state=OutgoingState.DRAFT).count() == 0
    finally:
        context.close()
    assert problems == [], "\n".join(problems)
