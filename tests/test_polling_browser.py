"""In Chromium: how often an account is checked, on its page and in its form (adaptive intervals), at
desktop and phone sizes, light and dark, English and German; nothing wider than a phone, axe clean.

Screenshots go to test-artifacts/screens/ (polling-*.png).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import MailAccount
from tests.factories import make_account
from tests.shellpages import overflow, page_for, screenshot, session_cookie
from tests.test_accessibility import AXE_OPTIONS, _describe

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = {
    "en": {
        "page": "Every 5 minutes; less often while no mail comes, down to every hour (quiet lately: every 17 minutes)",
        "field": "While no mail comes",
    },
    "de": {
        "page": "Alle 5 Minuten; seltener, solange keine Mail kommt, bis zu stündlich (zuletzt ruhig: alle 17 Minuten)",
        "field": "Solange keine Mail kommt",
    },
}


@pytest.fixture(scope="module")
def axe():
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_account_page_and_form_say_how_often_mail_is_checked(browser, axe, live_server, alice, size, scheme, lang):
    account = make_account(alice, label="Home")
    MailAccount.objects.filter(id=account.id).update(poll_interval=300, poll_interval_max=3600, current_interval=1012)
    words = WORDS[lang]
    problems: list[str] = []
    with page_for(browser, live_server, cookie=session_cookie(alice), size=size, scheme=scheme, lang=lang) as page:
        page.goto(live_server.url + reverse("accounts:detail", args=[account.id]), wait_until="load")
        assert words["page"] in page.inner_text("#account")
        screenshot(page, "polling-account", size, scheme, lang)
        assert overflow(page) <= 0
        problems += _describe(
            f"account-{size}-{lang}", scheme, axe.run(page, options=AXE_OPTIONS).response["violations"]
        )

        page.goto(live_server.url + reverse("accounts:edit", args=[account.id]), wait_until="load")
        field = page.locator("#id_poll_interval_max")
        assert field.input_value() == "3600"
        field.scroll_into_view_if_needed()
        assert words["field"] in page.inner_text("main")
        screenshot(page, "polling-form", size, scheme, lang)
        assert overflow(page) <= 0
        problems += _describe(f"form-{size}-{lang}", scheme, axe.run(page, options=AXE_OPTIONS).response["violations"])
    assert problems == [], "\n".join(problems)
