"""Sending addresses in Chromium: add an alias with its own name and a rich signature, another with a plain one,
find both in the account's list, and open the first again with its signature in the editor. At 1366x850 and
390x844, light and dark, English and German (screenshots in test-artifacts/screens/identities-*.png), axe
clean, nothing wider than a phone, no script or console error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import translation
from django.utils.translation import gettext

from outgoing import identities
from outgoing.models import Identity
from tests.test_richtext_browser import _page, _type, _wait_for_editor
from tests.test_snooze_browser import DESKTOP, PHONE, _axe_problems

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
pytestmark = pytest.mark.django_db(transaction=True)


def _words(lang: str) -> dict[str, str]:
    with translation.override(lang):  # the page's own words, as the user reads them
        return {
            "add": gettext("Add an address"),
            "save": gettext("Save"),
            "plain": gettext("Plain text"),
            "bold": gettext("Bold"),
            "below": str(Identity._meta.get_field("signature_placement").choices[1][1]),
            "edit sales": gettext("Edit %(address)s") % {"address": "sales@example.org"},
        }


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("lang", ["en", "de"])
def test_adding_aliases_with_their_own_name_and_signature(
    browser_context, live_server, axe, alice, smtp_account, size, scheme, lang
):
    account = smtp_account()
    identities.of_user(alice)  # the main address, as saving the sending settings makes it
    words = _words(lang)
    tag = f"{size}-{scheme}-{lang}"
    SCREENS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    def check(page, name: str) -> None:
        wide = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
        if wide[0] > wide[1]:
            problems.append(f"{name}-{tag}: {wide[0]}px wide in a {wide[1]}px window")
        if size == "desktop":
            problems.extend(_axe_problems(axe, page, f"{name}-{tag}"))
        # caret="initial": see tests/test_richtext_browser.py (Trix would copy the hidden caret's style)
        page.screenshot(path=str(SCREENS / f"identities-{name}-{tag}.png"), full_page=True, caret="initial")

    viewport = DESKTOP if size == "desktop" else PHONE
    context = browser_context(viewport, scheme, f"{lang}-{lang.upper()}")
    try:
        page = _page(context, problems)
        settings_url = f"{live_server.url}/compose/settings/{account.id}/"
        page.goto(settings_url)
        rows = page.locator(".identity-table tbody tr")
        assert rows.count() == 1  # the account's own address

        # An alias with a rich signature (rich: the default format), below the quote.
        page.get_by_role("link", name=words["add"], exact=True).click()
        _wait_for_editor(page)
        page.locator("#id_address").fill("sales@example.org")
        page.locator("#id_name").fill("Alice Müller (Vertrieb & Sales)")
        page.get_by_label(words["below"]).check()
        page.locator("trix-editor").click()
        page.get_by_role("button", name=words["bold"], exact=True).click()
        _type(page, "Alice")
        page.get_by_role("button", name=words["bold"], exact=True).click()
        _type(page, " · Sales")
        check(page, "add-rich")
        page.get_by_role("button", name=words["save"], exact=True).click()
        page.wait_for_url(settings_url)

        # A second alias, its signature in plain text.
        page.get_by_role("link", name=words["add"], exact=True).click()
        _wait_for_editor(page)
        page.locator("#id_address").fill("help@example.org")
        page.locator("#id_name").fill("Alice (Help)")
        page.get_by_role("button", name=words["plain"], exact=True).click()
        page.locator("#id_signature").wait_for(state="visible")
        page.locator("#id_signature").fill("Alice\nHelp desk, ext. 42")
        check(page, "add-plain")
        page.get_by_role("button", name=words["save"], exact=True).click()
        page.wait_for_url(settings_url)

        # Both in the list, by their own names.
        assert rows.count() == 3
        listed = rows.all_inner_texts()
        assert any("Alice Müller (Vertrieb & Sales) <sales@example.org>" in row for row in listed)
        assert any("Alice (Help) <help@example.org>" in row for row in listed)
        check(page, "list")

        # The rich one opens again with its signature in the editor.
        page.get_by_role("link", name=words["edit sales"], exact=True).click()
        _wait_for_editor(page)
        assert page.locator("trix-editor strong").inner_text() == "Alice"
        assert page.get_by_label(words["below"]).is_checked()
        check(page, "edit")
    finally:
        context.close()

    assert problems == []
    sales = Identity.objects.get(account=account, address="sales@example.org")
    assert (sales.name, sales.signature_placement) == ("Alice Müller (Vertrieb & Sales)", "below")
    assert "<strong>Alice</strong>" in sales.signature_html and sales.signature == "*Alice* · Sales"
    help_desk = Identity.objects.get(account=account, address="help@example.org")
    assert (help_desk.signature, help_desk.signature_html) == ("Alice\nHelp desk, ext. 42", "")
