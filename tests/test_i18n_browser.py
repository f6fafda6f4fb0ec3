"""Choosing German in Chromium: the Preferences form (POST to set_language), then German pages and dialogs."""

from __future__ import annotations

import pytest

from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db(transaction=True)


def test_choosing_german_in_preferences_turns_the_mail_pages_german(browser_context, live_server, alice):
    store_message(make_account(alice), build_message("Quarterly report", "numbers"), "1")
    context = browser_context(locale="en-US")
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{live_server.url}/accounts/preferences/", wait_until="load")
        assert page.locator("h1").inner_text() == "Preferences"
        page.select_option("#id_language", "de")
        page.click("#language-form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/accounts/preferences/")
        assert page.locator("h1").inner_text() == "Einstellungen"

        page.goto(f"{live_server.url}/", wait_until="load")
        assert page.locator("html").get_attribute("lang") == "de"
        assert page.locator("nav.folders a").first.inner_text().startswith("Posteingang")
        assert "Quarterly report" in page.locator("#message-list").inner_text()
        page.keyboard.press("?")  # mail.js opens the shortcut help
        assert page.locator("#shortcut-title").inner_text() == "Tastenkürzel"
        assert page.locator("#mail").get_attribute("data-new-mail") == "Neue Mail"
    finally:
        context.close()


def test_a_german_browser_gets_german_before_anyone_chooses(browser_context, live_server):
    context = browser_context(locale="de", user=None)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/login/", wait_until="load")
        assert page.locator("h1").inner_text() == "Anmelden"
        assert page.locator("label[for=id_username]").inner_text() == "Benutzername"
    finally:
        context.close()
