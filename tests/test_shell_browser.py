"""The app shell in real Chromium: the reading pane, the phone's drawer and toolbar, error pages,
and every page a signed-in user can open, checked for sideways scrolling and by axe-core."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.models import Profile
from mailbox.models import Message
from tests import urlwalk
from tests.shellpages import mailbox_of, overflow, page_for, screenshot, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

BLOCKING = {"serious", "critical"}


def _choose_reading_pane(page, base: str, label: str) -> None:
    page.goto(f"{base}/accounts/preferences/")
    page.get_by_label(label).check()
    page.locator("#main form").first.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/accounts/preferences/$"))


def test_the_reading_pane_is_chosen_in_preferences_and_opens_messages_beside_the_list(browser, live_server, alice):
    mail = mailbox_of(alice)
    first, second = mail["messages"][0], mail["messages"][1]
    with page_for(browser, live_server, cookie=session_cookie(alice)) as page:
        _choose_reading_pane(page, live_server.url, "Right of the list")
        assert Profile.objects.get(user=alice).reading_pane == "right"

        page.goto(live_server.url + "/")
        assert "pane-right" in page.locator("body").get_attribute("class")
        pane = page.locator("#reading-pane")
        list_box, pane_box = page.locator(".messages").bounding_box(), pane.bounding_box()
        assert pane_box["x"] >= list_box["x"] + list_box["width"]  # beside the list, on its right

        page.locator("#message-list li", has_text=first.subject).locator("a").click()
        pane.locator("h1", has_text=first.subject).wait_for()
        assert page.url == live_server.url + "/"  # reading did not leave the list
        assert "open" in page.locator("#message-list li", has_text=first.subject).get_attribute("class")
        assert Message.objects.get(id=first.id).seen
        screenshot(page, "pane-right", "desktop", "light", "en")

        # The keyboard: j moves from the opened row to the next, o opens it (in the pane).
        page.keyboard.press("j")
        page.keyboard.press("o")
        pane.locator("h1", has_text=second.subject).wait_for()
        assert page.url == live_server.url + "/"

        # The message keeps its own page.
        page.locator("#reading-pane .pane-open").click()
        page.wait_for_url(f"{live_server.url}/message/{second.id}/")
        assert page.locator("h1").first.inner_text().startswith(second.subject)

        _choose_reading_pane(page, live_server.url, "Below the list")
        page.goto(live_server.url + "/")
        page.locator("#message-list li a").first.click()
        pane.locator("h1", has_text=first.subject).wait_for()
        list_box, pane_box = page.locator(".messages").bounding_box(), pane.bounding_box()
        assert pane_box["y"] >= list_box["y"] + list_box["height"]  # under the list
        screenshot(page, "pane-below", "desktop", "light", "en")

    # On a phone a row opens the message's own page, whatever the choice.
    with page_for(browser, live_server, cookie=session_cookie(alice), size="phone") as page:
        page.goto(live_server.url + "/")
        assert not page.locator("#reading-pane").is_visible()
        page.locator("#message-list li a").first.click()
        page.wait_for_url(re.compile(r"/message/\d+/$"))


def test_off_by_default_a_row_opens_the_message_page(browser, live_server, alice):
    mailbox_of(alice)
    with page_for(browser, live_server, cookie=session_cookie(alice)) as page:
        page.goto(live_server.url + "/")
        assert page.locator("#reading-pane").count() == 0
        page.locator("#message-list li a").first.click()
        page.wait_for_url(re.compile(r"/message/\d+/$"))


@pytest.mark.parametrize("lang", ["en", "de"])
def test_on_a_phone_the_list_comes_first_and_folders_are_in_a_drawer(browser, live_server, alice, lang):
    mail = mailbox_of(alice)
    with page_for(browser, live_server, cookie=session_cookie(alice), size="phone", lang=lang) as page:
        page.goto(live_server.url + "/")
        assert overflow(page) <= 0
        assert not page.locator("#sidebar").is_visible()
        toolbar = page.locator(".list-toolbar").bounding_box()
        assert toolbar["height"] < 56  # one row
        first_row = page.locator("#message-list li").first.bounding_box()
        assert first_row["y"] < 200  # the first message near the top, not half-way down

        # The drawer: the button opens it, Escape closes it.
        page.click("#drawer-toggle")
        page.locator("#sidebar").wait_for(state="visible")
        assert page.locator("#drawer-toggle").get_attribute("aria-expanded") == "true"
        assert page.locator("nav.folders a").first.is_visible()
        page.keyboard.press("Escape")
        page.locator("#sidebar").wait_for(state="hidden")

        # The less used actions are in the "More" menu; "Move to" is a menu of folders.
        more = page.locator(".more-menu")
        more.locator("summary").click()
        mark_read = "Mark read" if lang == "en" else "Als gelesen markieren"
        assert more.get_by_role("button", name=mark_read).is_visible()
        page.locator("#main h1").click()  # a click elsewhere closes it
        assert not more.get_by_role("button", name=mark_read).is_visible()
        page.locator("#message-list li", has_text="Lunch?").locator("input[name=ids]").check()
        page.locator(".move-menu summary").click()
        page.locator(".move-menu").get_by_role("button", name="Travel plans").click()
        page.wait_for_url(live_server.url + "/")
        assert "Lunch?" not in page.locator("#message-list").inner_text()
    moved = next(m for m in mail["messages"] if m.subject == "Lunch?")
    assert Message.objects.get(id=moved.id).folder.startswith("u")


# --- Error pages ---------------------------------------------------------------------------------

ERROR_HEADINGS = {
    "en": {
        400: "Bad request",
        403: "Not allowed",
        404: "Page not found",
        500: "Something went wrong",
        503: "Back in a moment",
    },
    "de": {
        400: "Ungültige Anfrage",
        403: "Nicht erlaubt",
        404: "Seite nicht gefunden",
        500: "Etwas ist schiefgelaufen",
        503: "Gleich wieder da",
    },
}
CSRF_HEADING = {"en": "The form has expired", "de": "Das Formular ist abgelaufen"}


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_error_pages_look_like_the_app_in_the_users_language(browser, live_server, alice, settings, axe, lang, scheme):
    settings.ROOT_URLCONF = "tests.error_urls"
    settings.DEBUG = False
    mailbox_of(alice)
    paths = {
        400: "/test-errors/400/",
        403: "/ops/",
        404: "/message/999999/",
        500: "/test-errors/500/",
        503: "/test-errors/503/",
    }
    problems = []
    for size in ("desktop", "phone"):
        with page_for(browser, live_server, cookie=session_cookie(alice), size=size, scheme=scheme, lang=lang) as page:
            for status, path in paths.items():
                response = page.goto(live_server.url + path)
                assert response.status == status, path
                assert page.locator("#error-title").inner_text() == ERROR_HEADINGS[lang][status]
                assert page.locator(".appbar").is_visible()  # the app's own look
                assert page.locator("html").get_attribute("lang") == lang
                assert overflow(page) <= 0, f"{path} is wider than the window"
                screenshot(page, f"error-{status}", size, scheme, lang)
                if size == "desktop":
                    problems += _axe(axe, page, f"error {status}", scheme)

            # CSRF failure: the form's token no longer matches the cookie (as after the cookie expired).
            page.goto(live_server.url + "/accounts/preferences/")
            page.context.clear_cookies(name=settings.CSRF_COOKIE_NAME)
            page.locator("#language-form button[type=submit]").click()
            page.locator("#error-title").wait_for()
            assert page.locator("#error-title").inner_text() == CSRF_HEADING[lang]
            screenshot(page, "error-csrf", size, scheme, lang)
            if size == "desktop":
                problems += _axe(axe, page, "csrf failure", scheme)
    assert problems == []


# --- Every page of a signed-in user -------------------------------------------------------------


def _walk_pages(world) -> list[tuple[str, str]]:
    """(key, path) of every GET page that answers alice with HTML: the URL walk's own and object pages."""
    found = []
    client = Client()
    client.force_login(world.alice)
    for key, case in urlwalk.COVERAGE.items():
        if "GET" not in case.methods.split() or case.kind not in {"own", "object"} or key == "mailbox:message_body":
            continue  # message_body is the sandboxed frame's document: mail, not the app's page
        for query in case.queries(world):
            path = reverse(key, kwargs=case.args(world))
            if query:
                path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
            response = client.get(path)
            html = response.get("Content-Type", "").startswith("text/html")
            if response.status_code == 200 and html and not response.has_header("Content-Disposition"):
                found.append((key, path))
    return found


def _operator_pages(world) -> list[tuple[str, str]]:
    return [
        (key, reverse(key))
        for key, case in urlwalk.COVERAGE.items()
        if case.kind == "operator" and case.methods == "GET"
    ]


def _axe(axe, page, name: str, scheme: str) -> list[str]:
    results = axe.run(page, options={"resultTypes": ["violations"], "iframes": False})
    lines = []
    for violation in results.response["violations"]:
        if violation.get("impact") in BLOCKING:
            for node in violation["nodes"][:3]:
                target = " ".join(str(t) for t in node.get("target", []))
                lines.append(f"{name} [{scheme}] {violation['id']} ({violation['impact']}): {target}")
    return lines


def test_every_page_fits_a_phone_and_passes_axe_in_both_themes(browser, live_server, alice, bob, axe):
    world = urlwalk.build_world(alice, bob)
    pages = _walk_pages(world)
    assert len(pages) > 25, pages  # the walk found the app's pages
    operator = get_user_model().objects.create_superuser("root", "root@example.org", "root-Password-1")
    users = [(alice, pages), (operator, _operator_pages(world))]
    problems = []
    for user, paths in users:
        cookie = session_cookie(user)
        for scheme in ("light", "dark"):
            with page_for(browser, live_server, cookie=cookie, size="phone", scheme=scheme) as phone:
                for key, path in paths:
                    response = phone.goto(live_server.url + path)
                    assert response.status == 200, f"{key}: {path} answered {response.status}"
                    if overflow(phone) > 0:
                        problems.append(f"{key} {path} [{scheme}]: {overflow(phone)} px wider than a phone")
            with page_for(browser, live_server, cookie=cookie, size="desktop", scheme=scheme) as desk:
                for key, path in paths:
                    desk.goto(live_server.url + path)
                    problems += _axe(axe, desk, f"{key} {path}", scheme)
    # The same walk in German (longer words) at phone width.
    with page_for(browser, live_server, cookie=session_cookie(alice), size="phone", lang="de") as phone:
        for key, path in pages:
            phone.goto(live_server.url + path)
            if overflow(phone) > 0:
                problems.append(f"{key} {path} [de]: {overflow(phone)} px wider than a phone")
    assert problems == [], "\n".join(problems)
