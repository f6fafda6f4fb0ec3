"""Accessibility: axe-core finds no serious or critical violations on the main pages (issue 7).

axe-core comes with the ``axe-playwright-python`` package (its bundled axe.min.js; nothing is
fetched). Each page is checked in real Chromium, in the light and the dark colour scheme (the
contrast rules see different colours). The sandboxed frame holding a message's HTML body is
untrusted mail, not our markup: axe does not descend into frames.

A failure lists each violation as ``page [scheme] rule (impact): target — summary``.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.factories import build_message, make_account, store_message

BLOCKING = {"serious", "critical"}
AXE_OPTIONS = {"resultTypes": ["violations"], "iframes": False}

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mail(alice):
    """alice with one account and a few messages: one HTML, one with an attachment, one starred."""
    account = make_account(alice, label="Home")
    html = (
        b"From: Carol <carol@example.net>\r\nTo: alice@example.org\r\nSubject: Garden party\r\n"
        b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <garden@example.net>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<h1>Garden party</h1><p>Bring <b>cake</b>. <a href='https://example.net/rsvp'>RSVP</a></p>\r\n"
    )
    messages = [
        store_message(account, html, "u-html"),
        store_message(
            account,
            build_message(
                "Quarterly report",
                "The figures are attached.",
                attachments=[("report.pdf", "application/pdf", b"%PDF-1.4 fake")],
                date="Thu, 26 Nov 2026 09:00:00 +0000",
            ),
            "u-attach",
        ),
        store_message(
            account, build_message("Lunch?", "Friday at noon.", date="Wed, 25 Nov 2026 12:00:00 +0000"), "u-3"
        ),
    ]
    messages[2].flagged = True
    messages[2].save(update_fields=["flagged"])
    return account, messages


def _paths(account, messages) -> dict[str, str]:
    return {
        "inbox": "/",
        "message": f"/message/{messages[1].id}/",
        "message-html": f"/message/{messages[0].id}/",
        "accounts": "/accounts/",
        "account": f"/accounts/{account.id}/",
        "add-account": "/accounts/add/",
        "search": "/?q=report",
        "archive-empty": "/folder/archive/",
    }


def _describe(page_name: str, scheme: str, violations: list[dict]) -> list[str]:
    lines = []
    for violation in violations:
        if violation.get("impact") not in BLOCKING:
            continue
        for node in violation["nodes"][:5]:
            target = " ".join(str(t) for t in node.get("target", []))
            summary = (node.get("failureSummary") or "").replace("\n", " ")[:200]
            lines.append(f"{page_name} [{scheme}] {violation['id']} ({violation['impact']}): {target} — {summary}")
    return lines


def _check(browser, axe, url: str, name: str, cookie: str | None) -> list[str]:
    problems = []
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
        try:
            if cookie:
                context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie, "url": url}])
            page = context.new_page()
            page.set_default_timeout(10_000)
            response = page.goto(url, wait_until="load")
            assert response is not None and response.status == 200, (
                f"{name}: {url} answered {response and response.status}"
            )
            results = axe.run(page, options=AXE_OPTIONS)
            problems += _describe(name, scheme, results.response["violations"])
        finally:
            context.close()
    return problems


def test_main_pages_have_no_serious_or_critical_violations(browser, axe, live_server, alice, mail):
    account, messages = mail
    client = Client()
    client.force_login(alice)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    problems = _check(browser, axe, f"{live_server.url}/login/", "login", None)
    for name, path in _paths(account, messages).items():
        problems += _check(browser, axe, live_server.url + path, name, cookie)
    assert problems == [], "axe-core found serious/critical violations:\n" + "\n".join(problems)


def test_first_run_page_has_no_serious_or_critical_violations(browser, axe, live_server):
    problems = _check(browser, axe, f"{live_server.url}/setup/", "first-run", None)
    assert problems == [], "axe-core found serious/critical violations:\n" + "\n".join(problems)
