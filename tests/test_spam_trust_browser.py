"""In Chromium: the sender trust line of a message rspamd verified ("Signed by example.com") and the
warnings on a forged one, on the message page and in the reading pane, at desktop and phone sizes,
light and dark, English and German; axe finds no serious problem, nothing is wider than a phone.

Screenshots go to test-artifacts/screens/ (trust-*.png).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Profile
from mailbox.models import Message
from spam import scanning
from tests.factories import make_account, store_message
from tests.shellpages import overflow, page_for, screenshot, session_cookie
from tests.test_accessibility import AXE_OPTIONS, _describe
from tests.test_spam_trust_rspamd import mail

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = {
    "en": {
        "signed": "Signed by example.com",
        "dmarc": "DMARC failed",
        "reply": "Replies go to collect@elsewhere.example",
    },
    "de": {
        "signed": "Signiert von example.com",
        "dmarc": "DMARC fehlgeschlagen",
        "reply": "Antworten gehen an collect@elsewhere.example",
    },
}


def forged_mail() -> bytes:
    raw = mail("Your account needs attention", sender='"security@example.com" <news@example.com>')
    return raw.replace(b"\r\n\r\n", b"\r\nReply-To: Accounts <collect@elsewhere.example>\r\n\r\n", 1)


@pytest.fixture
def trust_mail(rspamd_dkim, dkim_signer, alice):
    account = make_account(alice, label="Home")
    signed = store_message(account, dkim_signer.sign(mail("This week at Example")), "s1")
    forged = store_message(account, dkim_signer.forge(forged_mail()), "f1")
    assert scanning.scan_due().counts.rspamd_scans == 2
    return signed, forged


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_signed_by_and_warnings_in_the_message_header(browser, axe, live_server, alice, trust_mail, size, scheme, lang):
    signed, forged = trust_mail
    words = WORDS[lang]
    problems: list[str] = []
    with page_for(browser, live_server, cookie=session_cookie(alice), size=size, scheme=scheme, lang=lang) as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        def shoot(name: str, message: Message, texts: list[str]) -> None:
            page.goto(live_server.url + reverse("mailbox:message", args=[message.id]), wait_until="load")
            body = page.inner_text("body")
            for text in texts:
                assert text in body, f"{name}: {text!r} is not on the page"
            assert "the newsletter of this week." in body  # the message is never hidden
            screenshot(page, f"trust-{name}", size, scheme, lang)
            assert overflow(page) <= 0, f"{name}: the page is wider than the window"
            problems.extend(
                _describe(f"{name}-{size}-{lang}", scheme, axe.run(page, options=AXE_OPTIONS).response["violations"])
            )

        shoot("signed", signed, [words["signed"]])
        assert page.locator(".trust-warning").count() == 0
        shoot("warning", forged, [words["dmarc"], words["reply"], "security@example.com"])
        assert page.locator(".trust-warning").count() == 3  # DMARC, the address in the name, Reply-To
        assert page.locator(".trust-signed").count() == 0
        assert errors == []
    assert problems == [], "\n".join(problems)


def test_the_warnings_show_in_the_reading_pane(browser, axe, live_server, alice, trust_mail):
    signed, forged = trust_mail
    Profile.objects.filter(user=alice).update(reading_pane="right")
    with page_for(browser, live_server, cookie=session_cookie(alice)) as page:
        page.goto(live_server.url + "/")
        pane = page.locator("#reading-pane")
        page.locator("#message-list li", has_text=forged.subject).locator("a").click()
        pane.locator(".trust-warning", has_text="DMARC failed").wait_for()
        screenshot(page, "trust-pane-warning", "desktop", "light", "en")
        page.locator("#message-list li", has_text=signed.subject).locator("a").click()
        pane.locator(".trust-signed", has_text="Signed by example.com").wait_for()
        screenshot(page, "trust-pane-signed", "desktop", "light", "en")
        assert overflow(page) <= 0
        problems = _describe("pane", "light", axe.run(page, options=AXE_OPTIONS).response["violations"])
    assert problems == [], "\n".join(problems)
