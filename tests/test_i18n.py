"""Translations: the German catalogue is complete and compiled, and choosing German shows German pages."""

from __future__ import annotations

import gettext
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.catalogue import parse_po, python_strings, template_strings
from tests.factories import build_message, make_account, store_message

REPO = Path(settings.BASE_DIR)
PO = REPO / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
CODE_DIRS = ["accounts", "mailbox", "oauth", "ops", "outgoing", "push", "users", "webpop"]


def marked_strings() -> set[tuple[str | None, str]]:
    keys = set()
    for path in (REPO / "templates").rglob("*.html"):
        keys |= {(ctx, msgid) for ctx, msgid in template_strings(path)}
    for folder in CODE_DIRS:
        for path in (REPO / folder).rglob("*.py"):
            if "migrations" not in path.parts:
                keys |= python_strings(path)
    return keys


def test_every_marked_string_is_in_the_german_catalogue_and_translated():
    entries = parse_po(PO)
    marked = marked_strings()
    assert len(marked) > 200  # the extraction found the templates' strings at all
    missing = sorted(k for k in marked if k not in entries)
    assert not missing, f"run makemessages -l de and translate: {missing[:10]}"
    untranslated = sorted(k for k, e in entries.items() if k != (None, "") and not all(e.msgstr))
    assert not untranslated, f"untranslated: {untranslated[:10]}"
    fuzzy = sorted(k for k, e in entries.items() if e.fuzzy and k != (None, ""))
    assert not fuzzy, f"fuzzy (check and unmark): {fuzzy[:10]}"


def test_every_model_choice_label_is_translatable_and_in_the_catalogue():
    """One way for choice labels: gettext_lazy in the model's choices, shown with get_FOO_display or the choices."""
    from django.apps import apps
    from django.utils.functional import Promise

    entries = parse_po(PO)
    labels = [
        (f"{model.__name__}.{field.name}", label)
        # (oauth's choices are names: Google, Microsoft, XOAUTH2)
        for app in ("accounts", "mailbox", "push", "outgoing", "unsubscribe", "users", "spam", "contacts")
        for model in apps.get_app_config(app).get_models()
        for field in model._meta.get_fields()
        for _value, label in getattr(field, "flatchoices", None) or ()
    ]
    assert "Host name not found" in {str(label) for _field, label in labels}
    plain = sorted({field for field, label in labels if not isinstance(label, Promise)})
    assert not plain, f"choice labels not marked with gettext_lazy: {plain}"
    missing = sorted({str(label) for _field, label in labels if (None, str(label)) not in entries})
    assert not missing, f"add to the catalogue: {missing}"


def test_translations_keep_the_placeholders_of_their_original():
    import re

    placeholder = re.compile(r"%(?:\(\w+\))?[sd]|\{\w*\}")
    for key, entry in parse_po(PO).items():
        if key == (None, ""):
            continue
        expected = sorted(placeholder.findall(entry.plural or entry.msgid))
        for text in entry.msgstr:
            assert sorted(placeholder.findall(text)) == expected, f"{entry.msgid!r} -> {text!r}"


def test_compiled_catalogue_is_up_to_date_with_the_po_file():
    """django.mo is committed; it must be compiled from the django.po beside it (compilemessages)."""
    with MO.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    for (context, msgid), entry in parse_po(PO).items():
        if not msgid:
            continue
        if entry.plural:
            for n, expected in ((1, entry.msgstr[0]), (5, entry.msgstr[1])):
                if context:
                    got = compiled.npgettext(context, msgid, entry.plural, n)
                else:
                    got = compiled.ngettext(msgid, entry.plural, n)
                assert got == expected, f"{msgid!r}: run compilemessages"
        else:
            got = compiled.pgettext(context, msgid) if context else compiled.gettext(msgid)
            assert got == entry.msgstr[0], f"{msgid!r}: run compilemessages"


@pytest.fixture
def alice_mail(alice):
    account = make_account(alice)
    store_message(account, build_message("", "No subject line here."), "1")
    return store_message(account, build_message("Quarterly report", "numbers inside"), "2")


def choose(client: Client, language: str) -> None:
    response = client.post(reverse("set_language"), {"language": language, "next": reverse("accounts:preferences")})
    assert response.status_code == 302


@pytest.mark.django_db
def test_inbox_shows_german_after_choosing_german_in_preferences(alice_client, alice_mail):
    english = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert '<html lang="en">' in english and "Inbox" in english and "(no subject)" in english

    choose(alice_client, "de")
    page = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert '<html lang="de">' in page
    for german in ("Posteingang", "Papierkorb", "Einstellungen", "Als ungelesen markieren", "(kein Betreff)"):
        assert german in page
    assert "Mark unread" not in page
    assert "Quarterly report" in page  # mail itself is never translated

    choose(alice_client, "en")
    assert "Mark unread" in alice_client.get(reverse("mailbox:inbox")).content.decode()


@pytest.mark.django_db
def test_message_page_and_flash_messages_follow_the_language(alice_client, alice_mail):
    choose(alice_client, "de")
    page = alice_client.get(reverse("mailbox:message", args=[alice_mail.id])).content.decode()
    assert "Antworten" in page and "Von</dt>" in page and ".eml herunterladen" in page
    response = alice_client.post(reverse("mailbox:bulk"), {"action": "archive", "ids": [alice_mail.id]}, follow=True)
    assert "1 Nachricht in den Ordner „Archiv“ verschoben." in response.content.decode()
    assert "Auf dem Server" in alice_client.get(reverse("mailbox:message", args=[alice_mail.id])).content.decode()
    account_page = alice_client.get(reverse("accounts:detail", args=[alice_mail.account_id])).content.decode()
    assert "SSL/TLS (implizit, meist Port 995)" in account_page
    assert "Jede Nachricht auf dem Server lassen." in account_page


@pytest.mark.django_db
def test_browser_language_is_used_until_one_is_chosen(alice):
    client = Client(HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")
    login = client.get(reverse("login")).content.decode()
    assert "Anmelden" in login and "Benutzername" in login
    client.force_login(alice)
    assert "Einstellungen" in client.get(reverse("accounts:preferences")).content.decode()
    choose(client, "en")  # the choice outranks the browser's
    page = client.get(reverse("accounts:preferences")).content.decode()
    assert "Preferences" in page and "Einstellungen" not in page


@pytest.mark.django_db
def test_preferences_offer_the_languages_with_the_current_one_selected(alice_client):
    page = alice_client.get(reverse("accounts:preferences")).content.decode()
    assert f'action="{reverse("set_language")}"' in page
    assert '<option value="en" lang="en" selected>English</option>' in page
    choose(alice_client, "de")
    page = alice_client.get(reverse("accounts:preferences")).content.decode()
    assert '<option value="de" lang="de" selected>Deutsch</option>' in page


@pytest.mark.django_db
def test_language_change_needs_post_and_csrf_and_a_known_language(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(reverse("set_language"), {"language": "de"}).status_code == 403
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies
    client = Client()
    client.force_login(alice)
    client.get(reverse("set_language") + "?language=de")  # a GET changes nothing
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies
    client.post(reverse("set_language"), {"language": "xx"})
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies


@pytest.mark.django_db
def test_language_change_never_redirects_off_site(alice_client):
    response = alice_client.post(reverse("set_language"), {"language": "de", "next": "https://evil.example/"})
    assert response.status_code == 302 and not response["Location"].startswith("https://evil.example")


@pytest.mark.django_db
def test_provider_notes_in_the_add_account_suggestions_follow_the_language(alice_client):
    url = reverse("accounts:suggest") + "?address=someone@gmx.de"
    assert "GMX's settings" in alice_client.get(url).json()["suggestions"][0]["notes"]
    choose(alice_client, "de")
    assert "GMX-Einstellungen" in alice_client.get(url).json()["suggestions"][0]["notes"]
