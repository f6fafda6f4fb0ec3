"""The first message from a new account in Chromium, at 1366x850 and 390x844, light and dark, English and German:
the editor carries the sending setup, the domain's SRV record replaces the guessed server, Test says why a wrong
login fails and then that the right one works, Send saves the settings and the message reaches the SMTP test
server. Once more without script (plain posts). Screenshots in test-artifacts/screens/ (firstsend-*).

No worker runs here: publishing is switched off and the test delivers as the worker would once the Undo window ended.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Profile
from outgoing import send, tasks
from outgoing.models import OutgoingMessage, OutgoingState, SmtpSettings
from tests.dnsserver import DnsServer
from tests.factories import make_account
from tests.test_snooze_browser import DESKTOP, PHONE, TIMEOUT_MS, _axe_problems

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
POP_PASSWORD = "pop-secret-ü"
WORKS = {"en": "works", "de": "funktioniert"}
DOCUMENT_TEXT = "(() => document.querySelector('trix-editor').editor.getDocument().toString())"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def new_account(alice, smtp_server, settings, monkeypatch):
    """alice's new account at example.org, whose domain publishes its submission server (the SMTP test server)."""
    monkeypatch.setattr(tasks, "publish_send", lambda outgoing_id, countdown=0: None)
    Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 5})
    account = make_account(
        alice, label="Home", host="pop.example.org", username="alice@example.org", password=POP_PASSWORD
    )
    smtp_server.add_user("alice@example.org", POP_PASSWORD)  # the same login as for POP3
    records = {("_submission._tcp.example.org", "SRV"): [f"0 0 {smtp_server.starttls_port} localhost."]}
    with DnsServer(records) as dns:
        settings.WEBPOP_DNS_NAMESERVERS = [dns.address]
        yield account


def _check(page, axe, name: str, size: str, problems: list[str]) -> None:
    wide = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    if wide[0] > wide[1]:
        problems.append(f"{name}: {wide[0]}px wide in a {wide[1]}px window")
    if size == "desktop":
        problems += _axe_problems(axe, page, name)
    page.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")  # the sticky bar on top
    # caret="initial": Playwright's hidden caret is a style Trix would copy into its HTML (see test_richtext_browser)
    page.screenshot(path=str(SCREENS / f"firstsend-{name}.png"), full_page=True, caret="initial")


def _type_message(page, *, rich: bool = True) -> None:
    page.locator("#id_to").fill("Bob <bob@example.net>")
    page.locator("#id_subject").fill("Our first message")
    if not rich:  # no script: the plain text field
        page.locator("#id_body").fill("Hello Bob,\n\nwritten before the sending setup.\n")
        return
    page.wait_for_function("() => document.querySelector('trix-editor')?.editor !== undefined")
    page.locator("trix-editor").click()
    page.keyboard.type("Hello Bob, written before the sending setup.")
    page.wait_for_function(f"() => {DOCUMENT_TEXT}().includes('written before the sending setup.')")


def _text_of(raw: bytes) -> str:
    return email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()


def _deliver_when_due(outgoing_id: int) -> None:
    """As the worker would: once the Undo window is over (before it, the claim refuses)."""
    due = OutgoingMessage.objects.get(id=outgoing_id).next_attempt_at
    assert send.deliver(outgoing_id) is send.Outcome.EARLY
    while timezone.now() < due:
        time.sleep(0.2)
    assert send.deliver(outgoing_id) is send.Outcome.SENT


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_first_compose_sets_up_sending_tests_and_sends(
    browser_context, live_server, axe, alice, new_account, smtp_server, size, scheme, locale
):
    SCREENS.mkdir(parents=True, exist_ok=True)
    lang = locale[:2]
    tag = f"{size}-{scheme}-{lang}"
    problems: list[str] = []
    context = browser_context(DESKTOP if size == "desktop" else PHONE, scheme, locale)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text} ({page.url})"))
        page.goto(f"{live_server.url}/compose/")
        setup = page.locator("#send-setup")
        expect(setup).to_be_visible()
        # The guess (smtp.example.org:587) gives way to what the domain publishes.
        expect(page.locator("#id_smtp-host")).to_have_value("localhost")
        expect(page.locator("#id_smtp-port")).to_have_value(str(smtp_server.starttls_port))
        expect(page.locator("#id_smtp-from_email")).to_have_value("alice@example.org")
        expect(page.locator("#id_smtp-username")).to_be_hidden()  # the POP3 login: nothing more to type
        page.locator("#id_smtp-from_name").fill("Alice Example")
        _type_message(page)
        _check(page, axe, f"setup-{tag}", size, problems)

        # A separate login with a wrong password: the test says why, in place.
        page.locator("#id_smtp-auth_1").check()
        page.locator("#id_smtp-username").fill("alice@example.org")
        page.locator("#id_smtp-password").fill("not the password")
        page.locator("#setup-test").click()
        failed = page.locator("#setup-result .notice.bad")
        expect(failed).to_contain_text("535")
        expect(failed).to_have_attribute("role", "alert")
        _check(page, axe, f"failed-{tag}", size, problems)

        page.locator("#id_smtp-auth_0").check()  # the POP3 login after all
        expect(page.locator("#id_smtp-password")).to_be_hidden()
        page.locator("#setup-test").click()
        result = page.locator("#setup-result .notice.ok")
        expect(result).to_contain_text("alice@example.org")
        expect(result).to_contain_text(WORKS[lang])
        assert smtp_server.logins == [("PLAIN", "alice@example.org")] and smtp_server.received == []
        assert not SmtpSettings.objects.exists()
        # Still the same page, everything as typed; the draft is saved behind it.
        expect(page.locator("#id_subject")).to_have_value("Our first message")
        assert "written before the sending setup." in page.evaluate(DOCUMENT_TEXT)
        page.wait_for_url(re.compile(r"/compose/\d+/$"))
        _check(page, axe, f"tested-{tag}", size, problems)

        page.locator("button[name=action][value=send]").click()
        page.wait_for_url(f"{live_server.url}/folder/sent/")
        expect(page.locator(".undo-send button")).to_be_visible()
        _check(page, axe, f"sent-{tag}", size, problems)

        outgoing = OutgoingMessage.objects.get(owner=alice)
        assert outgoing.state == OutgoingState.QUEUED
        assert SmtpSettings.objects.get(account=new_account).host == "localhost"
        _deliver_when_due(outgoing.id)
        [received] = smtp_server.received
        assert received.rcpt_tos == ["bob@example.net"] and received.login == "alice@example.org"
        assert b"From: Alice Example <alice@example.org>" in received.data
        assert "written before the sending setup." in _text_of(received.data)
    finally:
        context.close()
    assert problems == [], "\n".join(problems)


def test_without_script_test_and_send_are_plain_posts(browser_context, live_server, alice, new_account, smtp_server):
    SCREENS.mkdir(parents=True, exist_ok=True)
    context = browser_context(DESKTOP, java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{live_server.url}/compose/")
        # No script, no lookup: the guess is shown, the person puts in what their provider says.
        expect(page.locator("#id_smtp-host")).to_have_value("smtp.example.org")
        page.locator("#id_smtp-host").fill("localhost")
        page.locator("#id_smtp-port").fill(str(smtp_server.starttls_port))
        _type_message(page, rich=False)
        page.locator("#setup-test").click()
        expect(page.locator("#setup-result .notice.ok")).to_contain_text("works")
        draft = OutgoingMessage.objects.get(owner=alice)  # saved with the test; the page posts to it next
        expect(page.locator("#compose-form")).to_have_attribute("action", f"/compose/{draft.id}/")
        expect(page.locator("#id_subject")).to_have_value("Our first message")
        expect(page.locator("#id_body")).to_have_value(re.compile("written before the sending setup"))
        expect(page.locator("#id_smtp-host")).to_have_value("localhost")
        # (No axe or measuring here: both run script in the page. The scripted runs above check this page.)
        page.screenshot(path=str(SCREENS / "firstsend-noscript-tested-desktop-light-en.png"), full_page=True)
        page.locator("button[name=action][value=send]").click()
        page.wait_for_url(f"{live_server.url}/folder/sent/")
        outgoing = OutgoingMessage.objects.get(owner=alice)
        _deliver_when_due(outgoing.id)
        [received] = smtp_server.received
        assert received.rcpt_tos == ["bob@example.net"]
        assert "written before the sending setup." in _text_of(received.data)
    finally:
        context.close()
