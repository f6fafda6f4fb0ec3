"""The app shell without a browser: error pages, the reading pane choice, the sidebar, the icon set."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import translation

from accounts.models import Profile
from mailbox import folders, sidebar
from mailbox.attachments import ICONS as ATTACHMENT_ICONS
from mailbox.sidebar import FOLDER_ICONS
from tests.factories import build_message, make_account, store_message

REPO = Path(settings.BASE_DIR)
SPRITE = REPO / "static" / "icons" / "sprite.svg"


def _client(user, lang: str = "en", **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = lang
    return client


# --- Error pages -----------------------------------------------------------------------------------

GERMAN = {
    400: "Ungültige Anfrage",
    403: "Nicht erlaubt",
    404: "Seite nicht gefunden",
    500: "Etwas ist schiefgelaufen",
    "csrf": "Das Formular ist abgelaufen",
}
ENGLISH = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    500: "Something went wrong",
    "csrf": "The form has expired",
}


def _error_responses(alice, lang: str) -> dict:
    client = _client(alice, lang, raise_request_exception=False)
    strict = _client(alice, lang, enforce_csrf_checks=True)  # as a browser: the token is checked
    return {
        400: client.get("/test-errors/400/"),
        403: client.get(reverse("ops:dashboard")),
        404: client.get(reverse("mailbox:message", args=[999_999])),
        500: client.get("/test-errors/500/"),
        "csrf": strict.post(reverse("accounts:preferences"), {"time_zone": "", "reading_pane": "right"}),
    }


@pytest.mark.django_db
@pytest.mark.urls("tests.error_urls")
@pytest.mark.parametrize(("lang", "headings"), [("en", ENGLISH), ("de", GERMAN)])
def test_error_pages_are_the_apps_own_in_the_users_language(alice, lang, headings):
    make_account(alice)
    for kind, response in _error_responses(alice, lang).items():
        status = 403 if kind == "csrf" else kind
        html = response.content.decode()
        assert response.status_code == status, kind
        assert f'<h1 id="error-title">{headings[kind]}</h1>' in html, kind
        assert f'<html lang="{lang}">' in html, kind
        assert "/static/css/shell.css" in html and 'class="card error-page"' in html, kind
    assert Profile.objects.filter(user=alice, reading_pane="right").count() == 0  # the forged form changed nothing


def test_the_500_page_renders_without_the_database():
    """Not marked django_db: any query would raise. The page needs no context processor either."""
    from django.views.defaults import server_error

    with translation.override("de"):
        response = server_error(RequestFactory().get("/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert '<h1 id="error-title">Etwas ist schiefgelaufen</h1>' in html
    assert "/static/css/shell.css" in html


def test_an_outage_gets_the_503_page_with_retry_after_and_a_bug_the_500():
    """handler500 runs inside Django's except block: what it is handling decides the page."""
    from django.db import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from webpop.errors import server_error

    request = RequestFactory().get("/")
    for error in (OperationalError("connection refused"), RedisConnectionError("refused")):
        try:
            raise error
        except Exception:
            with translation.override("de"):
                response = server_error(request)
        html = response.content.decode()
        assert response.status_code == 503 and response["Retry-After"] == "10"
        assert '<h1 id="error-title">Gleich wieder da</h1>' in html and "/static/css/shell.css" in html
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        response = server_error(request)
    assert response.status_code == 500 and not response.has_header("Retry-After")


# --- Reading pane --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_reading_pane_choice_is_saved_and_applied_to_the_cached_list(alice):
    store_message(make_account(alice), build_message("Hello there"), "1")
    client = _client(alice)
    inbox = client.get(reverse("mailbox:inbox")).content.decode()  # now in the page cache
    assert 'data-reading-pane="off"' in inbox and 'id="reading-pane"' not in inbox

    # Followed: the "saved" message is shown on the Preferences page, so the inbox may come from the cache.
    choices = {"time_zone": "", "conversations": "on", "reading_pane": "right"}  # only the pane changes
    response = client.post(reverse("accounts:preferences"), choices, follow=True)
    assert response.redirect_chain == [(reverse("accounts:preferences"), 302)]
    assert Profile.objects.get(user=alice).reading_pane == "right"
    client.cookies.pop("messages", None)  # shown: a browser drops the emptied cookie, the test client keeps it
    inbox = client.get(reverse("mailbox:inbox")).content.decode()
    assert 'data-reading-pane="right"' in inbox and 'id="reading-pane"' in inbox
    assert "pane-right" in inbox and "/static/js/pane.js" in inbox

    # Another session of hers (another browser) follows the saved choice too.
    assert 'id="reading-pane"' in _client(alice).get(reverse("mailbox:inbox")).content.decode()

    # A form without the field (an older page) keeps the choice.
    client.post(reverse("accounts:preferences"), {"time_zone": ""})
    assert Profile.objects.get(user=alice).reading_pane == "right"
    client.post(reverse("accounts:preferences"), {"time_zone": "", "reading_pane": "sideways"})
    assert Profile.objects.get(user=alice).reading_pane == "right"  # not a choice: refused


# --- Sidebar ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_signed_in_page_has_the_sidebar_with_counts_and_the_users_folders(alice, bob):
    account = make_account(alice)
    store_message(account, build_message("Unread one"), "1")
    folders.create(alice.id, "Receipts")
    folders.create(bob.id, "Bobs folder")
    client = _client(alice)
    for url in (reverse("accounts:preferences"), reverse("accounts:list"), reverse("outgoing:compose")):
        html = client.get(url, follow=True).content.decode()
        assert 'id="sidebar"' in html, url
        assert '<span class="count" id="unread-badge">1</span>' in html, url
        assert ">Receipts</span>" in html and "Bobs folder" not in html, url


@pytest.mark.django_db
def test_the_message_page_marks_its_folder_in_the_sidebar(alice):
    message = store_message(make_account(alice), build_message("Hello"), "1")
    html = _client(alice).get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert f'<a href="{reverse("mailbox:inbox")}" aria-current="page">' in html


@pytest.mark.django_db
def test_visitors_get_no_sidebar(client, alice):
    html = client.get(reverse("login")).content.decode()
    assert 'id="sidebar"' not in html and 'class="appbar"' in html


# --- Icons and weight ------------------------------------------------------------------------------


def test_every_icon_the_app_names_is_in_the_vendored_set_with_its_licence():
    from xml.dom import minidom

    # The file as a browser reads it: a broken sprite shows no icon at all.
    symbols = {node.getAttribute("id") for node in minidom.parse(str(SPRITE)).getElementsByTagName("symbol")}
    named = set(FOLDER_ICONS.values()) | {"folder", "at-sign"}  # mailbox/sidebar.py's user folders and accounts
    named |= set(ATTACHMENT_ICONS.values()) | {"file"}  # mailbox/attachments.py's kinds
    for path in (REPO / "templates").rglob("*.html"):
        named |= set(re.findall(r'{% icon "([a-z0-9-]+)"', path.read_text()))
        named |= set(re.findall(r'{% icon \S+\|default:"([a-z0-9-]+)"', path.read_text()))
        named |= set(re.findall(r'{{ icons }}#([a-z0-9-]+)"', path.read_text()))
    for path in (REPO / "static").rglob("*.js"):  # control(..., texts.icons, "NAME", ...) in scripts
        named |= set(re.findall(r'texts\.icons, "([a-z0-9-]+)"', path.read_text()))
    assert len(named) > 20
    assert named <= symbols, f"not in static/icons/sprite.svg: {sorted(named - symbols)}"
    assert "ISC License" in (SPRITE.parent / "LICENSE").read_text()


def test_the_shell_keeps_the_first_load_small(capsys):
    """The CSS, JS and icons a list page loads, compressed as served: well under the app's 150 KB budget."""
    files = ["css/app.css", "css/shell.css", "js/theme.js", "js/shell.js", "js/mail.js", "js/pane.js"]
    files.append("icons/sprite.svg")
    sizes = {name: len(gzip.compress((REPO / "static" / name).read_bytes())) for name in files}
    with capsys.disabled():
        print("\nshell first load (gzip bytes):", sizes, "total", sum(sizes.values()))
    assert sum(sizes.values()) < 40_000


def test_the_sidebar_memo_keys_on_its_links_and_the_language(alice):
    shown = sidebar.links(sidebar.load(alice.id), current="inbox")
    with translation.override("en"):
        english = sidebar.html(shown)
        archive = sidebar.html(sidebar.links(sidebar.load(alice.id), current="archive"))
    with translation.override("de"):
        german = sidebar.html(shown)
    assert 'href="/" aria-current="page"' in english and ">Inbox<" in english
    assert 'href="/" aria-current="page"' not in archive and 'aria-current="page"' in archive
    assert ">Posteingang<" in german and ">Inbox<" not in german
