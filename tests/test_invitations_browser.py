"""An invitation in real Chromium: the card, Accept by keyboard, the REPLY at the organiser's SMTP server.

At desktop (1366×850) and phone (390×844) size, light and dark, English and German; screenshots go to
test-artifacts/screens/invitation-*.png. No sideways scrolling on the phone, axe finds nothing serious.
"""

from __future__ import annotations

import email
import email.policy

import icalendar
import pytest

from accounts.views_prefs import save_preferences
from outgoing import send
from tests.factories import store_message
from tests.test_accessibility import AXE_OPTIONS, _describe
from tests.test_attachments_browser import SCREENS, TIMEOUT_MS, Watch, _fits
from tests.test_invitations import ics, invitation_mail

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_invitation_card_and_accepting_it(
    browser_context, live_server, axe, alice, smtp_account, smtp_server, send_enqueued, size, scheme, language
):
    tag = f"{size}-{scheme}-{language}"
    save_preferences(alice, time_zone="America/New_York", conversations=False)
    account = smtp_account()
    message = store_message(account, invitation_mail(ics(extra="RRULE:FREQ=WEEKLY;COUNT=4")), "inv-1")
    context = browser_context(size, scheme, language, language=language)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    watch = Watch(page)
    page.goto(f"{live_server.url}/message/{message.id}/", wait_until="networkidle")
    card = page.locator(".calendar-card")
    text = card.inner_text()
    assert "Budget review" in text and "Invitation: Budget" not in text
    assert ("8:00" if language == "de" else "8 a.m.") in text, text  # 14:00 Berlin in New York
    assert ("Teilnehmer" if language == "de" else "Attendees") in text
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENS / f"invitation-{tag}.png"), full_page=True)
    if size == "phone":
        _fits(page, "invitation")
    problems = _describe("invitation", scheme, axe.run(page, options=AXE_OPTIONS).response["violations"])

    accept = card.get_by_role("button", name="Zusagen" if language == "de" else "Accept")
    accept.focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    state = page.locator(".calendar-answer-state")
    assert state.inner_text().startswith("Sie haben zugesagt." if language == "de" else "You accepted.")
    assert page.locator(".calendar-answer button[aria-pressed=true]").count() == 1
    page.locator(".calendar-card").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENS / f"invitation-accepted-{tag}.png"), full_page=True)
    if size == "phone":
        _fits(page, "invitation accepted")
    problems += _describe("invitation accepted", scheme, axe.run(page, options=AXE_OPTIONS).response["violations"])
    assert problems == []
    assert watch.problems == []

    [outgoing_id] = send_enqueued
    assert send.deliver(outgoing_id) == send.Outcome.SENT
    [got] = smtp_server.received
    assert got.rcpt_tos == ["carol@example.net"]
    mail = email.message_from_bytes(got.data, policy=email.policy.default)
    part = next(p for p in mail.walk() if p.get_content_type() == "text/calendar")
    [event] = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
    assert event["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    context.close()
