"""In Chromium: the account page's spam filtering (which filter is active, the provider's verdict form), a
"Probably spam" row and message, and the thresholds on Preferences, at desktop and phone sizes, light and
dark, English and German; axe finds no serious problem, nothing is wider than a phone.

Screenshots go to test-artifacts/screens/ (spam-*.png).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailbox.models import Message
from spam import actions as spam_actions
from spam import health as spam_health
from tests.factories import build_message, make_account, store_message
from tests.shellpages import overflow, page_for, screenshot, session_cookie
from tests.test_accessibility import AXE_OPTIONS, _describe

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = {
    "en": {
        "provider": "Your provider's verdict decides.",
        "rspamd": "This server's spam filter (rspamd) checks new mail.",
        "probable": "Probably spam",
        "notice": "The spam filter thinks this message is probably spam.",
        "thresholds": "Move to Spam from this score",
    },
    "de": {
        "provider": "Das Urteil Ihres Anbieters entscheidet.",
        "rspamd": "Der Spamfilter dieses Servers (rspamd) prüft neue Post.",
        "probable": "Wahrscheinlich Spam",
        "notice": "Der Spamfilter hält diese Nachricht wahrscheinlich für Spam.",
        "thresholds": "Ab dieser Punktzahl in den Spam-Ordner",
    },
}


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_spam_filtering_pages(browser, axe, live_server, alice, settings, size, scheme, lang):
    account = make_account(alice, label="Home")
    spam_actions.set_provider_trust(alice.id, account.id, trust=True, authserv_id="mx.provider.example")
    store_message(account, build_message("Lunch on Friday?", "Shall we?", sender="Carol <carol@example.net>"), "u1")
    doubtful = store_message(
        account,
        build_message("You have won a prize, claim it today", "Click here.", sender="Prize Desk <win@prize.example>"),
        "u2",
    )
    Message.objects.filter(id=doubtful.id).update(spam_verdict="probable", spam_score=4.8)
    words = WORDS[lang]
    problems: list[str] = []
    with page_for(browser, live_server, cookie=session_cookie(alice), size=size, scheme=scheme, lang=lang) as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        def shoot(name: str, path: str, text: str, section: str | None = None) -> None:
            page.goto(live_server.url + path, wait_until="load")
            assert text in page.inner_text("body"), f"{name}: {text!r} is not on the page"
            if section:
                page.locator(section).scroll_into_view_if_needed()
            screenshot(page, f"spam-{name}", size, scheme, lang)
            assert overflow(page) <= 0, f"{name}: the page is wider than the window"
            problems.extend(
                _describe(f"{name}-{size}-{lang}", scheme, axe.run(page, options=AXE_OPTIONS).response["violations"])
            )

        account_page = reverse("accounts:detail", args=[account.id])
        shoot("account-provider", account_page, words["provider"], "#spam-filter")
        assert page.locator("#id_trust").is_checked()
        shoot("list", reverse("mailbox:inbox"), words["probable"])
        shoot("message", reverse("mailbox:message", args=[doubtful.id]), words["notice"])

        settings.WEBPOP_RSPAMD_URL = "http://127.0.0.1:11333"  # the live server runs in this process
        shoot("account-rspamd", account_page, words["rspamd"], "#spam-filter")
        assert page.locator("#spam-filter-form").count() == 0
        shoot("preferences", reverse("accounts:preferences"), words["thresholds"], "#spam-filter")
        assert errors == []
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_dashboard_alerts_when_rspamd_is_down(
    browser, axe, live_server, alice, staff, settings, size, scheme, lang
):
    settings.WEBPOP_RSPAMD_URL = "http://127.0.0.1:11333"
    account = make_account(alice)
    for n in range(3):
        store_message(account, build_message(f"Message {n}", "Hello."), f"m{n}")
    spam_health.record(spam_health.Counts(scanned=40, spam=6, probable=2, rspamd_scans=40, rspamd_seconds=0.4,
                                          request_seconds=0.9))  # fmt: skip
    spam_health.failed("cannot connect to rspamd at 127.0.0.1:11333: Connection refused")
    alert = {"en": "rspamd has not answered for", "de": "rspamd antwortet nicht mehr"}[lang]
    with page_for(browser, live_server, cookie=session_cookie(staff), size=size, scheme=scheme, lang=lang) as page:
        page.goto(live_server.url + reverse("ops:dashboard"), wait_until="load")
        assert alert in page.inner_text("#spam-alert")
        screenshot(page, "spam-dashboard-alert", size, scheme, lang)
        page.locator("#spam").scroll_into_view_if_needed()
        screenshot(page, "spam-dashboard-card", size, scheme, lang)
        assert overflow(page) <= 0
        problems = _describe(
            f"dashboard-{size}-{lang}", scheme, axe.run(page, options=AXE_OPTIONS).response["violations"]
        )
    assert problems == [], "\n".join(problems)
