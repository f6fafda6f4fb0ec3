"""``{% once %}`` (webpop/templatetags/shell.py) and the pages built with it: markup rendered once per
process is reused only where nothing it shows differs, and per-request parts stay per request."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.template import engines
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from tests.factories import make_account
from tests.test_conversation import make_thread
from webpop.templatetags import shell


@pytest.fixture(autouse=True)
def _empty():
    shell._once.clear()
    yield
    shell._once.clear()


def _render(text: str, **context) -> str:
    return engines["django"].from_string("{% load shell %}" + text).render(context)


def test_once_reuses_the_first_rendering_for_the_same_key_only():
    text = '{% once "t" kind %}{{ kind }}:{{ other }}{% endonce %}'
    assert _render(text, kind="a", other="first") == "a:first"
    # Same key: the first rendering, even though a value outside the key changed (the keys must name all).
    assert _render(text, kind="a", other="second") == "a:first"
    assert _render(text, kind="b", other="second") == "b:second"


def test_once_keys_on_the_language_and_the_time_zone():
    text = '{% load i18n %}{% once "t" %}{% translate "Delete" %} {% now "e" %}{% endonce %}'
    with translation.override("en"):
        english = _render(text)
    with translation.override("de"):
        german = _render(text)
    assert english.startswith("Delete") and german.startswith("Löschen")
    with translation.override("en"), timezone.override("Asia/Tokyo"):
        assert _render(text) != english


def test_once_keeps_a_bounded_number_of_variants():
    for n in range(shell.ONCE_VARIANTS + 10):
        _render('{% once "t" n %}{{ n }}{% endonce %}', n=n)
    assert len(shell._once) == shell.ONCE_VARIANTS
    assert _render('{% once "t" n %}{{ n }}!{% endonce %}', n=0) == "0!"  # the oldest was let go


def _csrf(html: str) -> set[str]:
    return set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html))


def _conversation(owner) -> int:
    return make_thread(make_account(owner), 2)[0].id


@pytest.mark.django_db
def test_pages_built_once_still_show_each_user_their_own(alice, bob):
    """The shell, toolbar and help are shared markup; names, CSRF tokens and ids stay each request's own."""
    pages = {}
    for user in (alice, bob):
        client = Client()
        client.force_login(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        message_id = _conversation(user)
        html = client.get(reverse("mailbox:message", args=[message_id])).content.decode()
        pages[user.username] = (html, message_id)
        assert f'<span class="user-name">{user.username}</span>' in html
        assert f'data-opened="{message_id}"' in html and f'id="m{message_id}"' in html
        assert 'id="shortcut-help"' in html and "snooze-menu" in html
    (alice_page, _), (bob_page, _) = pages["alice"], pages["bob"]
    assert "bob" not in re.sub(r"<script.*?</script>", "", alice_page)  # nothing of bob's on alice's page
    assert _csrf(alice_page) and _csrf(bob_page) and not _csrf(alice_page) & _csrf(bob_page)
