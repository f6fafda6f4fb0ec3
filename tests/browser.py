"""Debian's Chromium driven by Playwright, as every browser test here uses it (never `playwright install`)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

CHROMIUM = "/usr/bin/chromium"
# No background networking: this machine's closed network would refuse it, many times a start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_available() -> bool:
    return bool(shutil.which("chromium")) or os.path.exists(CHROMIUM)


@contextlib.contextmanager
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the
    # tests make themselves are still plain synchronous calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


SIZES = {"desktop": {"width": 1366, "height": 850}, "phone": {"width": 390, "height": 844}}
LOCALES = {"en": "en-US", "de": "de-DE"}


def session_cookie(user) -> str:
    """A session of ``user``'s, as the login page would start it."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def new_context(
    browser, base_url: str, user=None, *, size="desktop", scheme="light", locale="en", language=None, **options
):
    """A new browser context, logged in as ``user`` (when given) on ``base_url``.

    ``size``: a SIZES name or a viewport; ``locale``: "en", "de" or a full tag (what Accept-Language says);
    ``language``: also Django's language cookie; ``options``: more of Playwright's new_context options.
    """
    from django.conf import settings

    viewport = SIZES[size] if isinstance(size, str) else size
    context = browser.new_context(viewport=viewport, color_scheme=scheme, locale=LOCALES.get(locale, locale), **options)
    cookies = []
    if user is not None:
        cookies.append({"name": settings.SESSION_COOKIE_NAME, "value": session_cookie(user), "url": base_url})
    if language:
        cookies.append({"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base_url})
    if cookies:
        context.add_cookies(cookies)
    return context
