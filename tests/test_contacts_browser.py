"""In Chromium: the contacts list, a contact's page, editing it, and To: suggestions picked with the keyboard,
at desktop and phone sizes, light and dark, English and German; axe on every contacts page.

Screenshots go to test-artifacts/screens/ (contacts-*.png).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contacts import actions
from contacts.actions import Card
from contacts.models import Contact
from mailbox.models import Folder, Message
from tests.browser import session_cookie
from tests.factories import build_message, store_message
from tests.test_accessibility import _check

pytestmark = pytest.mark.django_db(transaction=True)
SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
TIMEOUT_MS = 15_000
WORDS = {
    "en": {"edit": "Edit", "save": "Save"},
    "de": {"edit": "Bearbeiten", "save": "Speichern"},
}


def _fits(page, where: str) -> None:
    widths = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert widths[0] <= widths[1], f"{where}: the page is {widths[0]} px wide in a {widths[1]} px window"


def _book(alice, account) -> Contact:
    jurgen, _ = actions.create(
        alice.id,
        Card(
            name="Jürgen Müller-Lüdenscheidt",
            emails=["juergen.mueller-luedenscheidt@a-rather-long-company-name.example", "jm@home.example"],
            notes="Met at the spring fair.\nPrefers calls after 10, never on Fridays.",
        ),
    )
    actions.create(alice.id, Card(name="Anna Schmidt", emails=["anna@firma.example"]))
    actions.create(alice.id, Card(name="", emails=["no-name@example.net"]))
    actions.record(alice.id, [("", "jm@home.example")], jurgen.created_at)  # written to: ranks first
    received = build_message(
        "Spring fair: the stand plan", "x", sender="Jürgen <jm@home.example>", to="alice@example.org"
    )
    store_message(account, received, "from-jurgen")
    sent = store_message(
        account, build_message("Re: Spring fair", "x", sender="alice@example.org", to="jm@home.example"), "to-j"
    )
    Message.objects.filter(id=sent.id).update(folder=Folder.SENT)
    return jurgen


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_contacts_pages_and_suggestions_in_chromium(
    browser_context, live_server, alice, smtp_account, size, scheme, lang
):
    account = smtp_account()
    jurgen = _book(alice, account)
    words = WORDS[lang]
    name = f"{size}-{scheme}-{lang}"
    SCREENS.mkdir(parents=True, exist_ok=True)
    context = browser_context(size, scheme=scheme, locale=lang)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # The list: most contacted first.
        page.goto(f"{live_server.url}/contacts/", wait_until="load")
        names = page.locator(".contact-name").all_inner_texts()
        assert names[0] == "Jürgen Müller-Lüdenscheidt" and len(names) == 3
        _fits(page, "contacts list")
        page.screenshot(path=str(SCREENS / f"contacts-list-{name}.png"), full_page=True)

        # A contact's page: addresses, notes, recent mail with them.
        page.locator(f"#contact-{jurgen.id} a").click()
        page.wait_for_url(f"{live_server.url}/contacts/{jurgen.id}/")
        assert "Prefers calls after 10" in page.locator(".contact-notes").inner_text()
        assert page.locator(".contact-mail li").count() == 2
        _fits(page, "contact page")
        page.screenshot(path=str(SCREENS / f"contacts-detail-{name}.png"), full_page=True)

        # Editing.
        page.get_by_role("link", name=words["edit"], exact=True).click()
        page.wait_for_url(f"{live_server.url}/contacts/{jurgen.id}/edit/")
        _fits(page, "edit form")
        page.screenshot(path=str(SCREENS / f"contacts-edit-{name}.png"), full_page=True)
        page.locator("#id_name").fill("Jürgen Müller")
        page.get_by_role("button", name=words["save"], exact=True).click()
        page.wait_for_url(f"{live_server.url}/contacts/{jurgen.id}/")
        assert page.locator("h1").inner_text() == "Jürgen Müller"

        # Compose: typing in To shows suggestions; arrow down and Enter picks one.
        page.goto(f"{live_server.url}/compose/", wait_until="load")
        to = page.locator("input[name=to]")
        to.focus()
        page.keyboard.type("mül")
        options = page.locator("#address-suggestions [role=option]")
        options.first.wait_for()
        long_address = "juergen.mueller-luedenscheidt@a-rather-long-company-name.example"
        assert options.all_inner_texts() == [f"Jürgen Müller <{long_address}>", "Jürgen Müller <jm@home.example>"]
        _fits(page, "compose with suggestions")
        page.screenshot(path=str(SCREENS / f"contacts-suggest-{name}.png"))
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        assert to.get_attribute("aria-activedescendant") == "suggestion-1"
        page.keyboard.press("Enter")
        assert to.input_value() == "Jürgen Müller <jm@home.example>, "
        assert page.locator("#address-suggestions").is_hidden()
        assert errors == []
    finally:
        context.close()


def test_contacts_pages_have_no_serious_or_critical_violations(browser, axe, live_server, alice, smtp_account):
    account = smtp_account()
    jurgen = _book(alice, account)
    cookie = session_cookie(alice)
    pages = {
        "contacts-list": "/contacts/",
        "contacts-search": "/contacts/?q=anna&order=name",
        "contacts-empty-search": "/contacts/?q=nobody",
        "contact": f"/contacts/{jurgen.id}/",
        "contact-edit": f"/contacts/{jurgen.id}/edit/",
        "contact-new": "/contacts/new/",
        "contacts-import": "/contacts/import/",
    }
    problems = []
    for page_name, path in pages.items():
        problems += _check(browser, axe, live_server.url + path, page_name, cookie)
    assert problems == [], "axe-core found serious/critical violations:\n" + "\n".join(problems)
