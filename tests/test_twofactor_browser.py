"""In Chromium: turn on two-factor sign-in and sign in with a code; the users pages pass axe-core."""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.test_accessibility import _check

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT_MS = 15_000


def _code(device: TOTPDevice, steps_ahead: int) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + steps_ahead * device.step
    return f"{totp.token():06d}"


def test_turn_on_two_factor_then_sign_in_with_a_code(browser, live_server, alice):
    context = browser.new_context()
    errors: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        url = live_server.url

        page.goto(f"{url}/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "alice-Password-1")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{url}/")

        page.goto(f"{url}/security/")
        page.get_by_role("link", name="Turn on two-factor sign-in").click()
        page.wait_for_url(re.compile(r"/security/2fa/setup/$"))
        assert page.locator("figure.qr svg").is_visible()
        device = TOTPDevice.objects.get(user=alice, confirmed=False)
        page.fill("#id_token", _code(device, 0))
        page.get_by_role("button", name="Turn on").click()
        assert page.locator("#backup-codes li").count() == 10

        page.locator(".user-menu summary").click()  # signing out is in the user menu
        page.get_by_role("button", name=re.compile("Sign out")).click()
        page.wait_for_url(re.compile(r"/login/"))
        page.fill("#id_username", "alice")
        page.fill("#id_password", "alice-Password-1")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/login/code/$"))
        page.fill("#id_token", _code(device, 1))  # the code just used works only once: the next one
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(f"{url}/")
        page.locator(".user-menu summary").click()
        assert page.get_by_role("button", name=re.compile("Sign out alice")).is_visible()
    finally:
        context.close()
    assert errors == []


def test_users_pages_have_no_serious_or_critical_violations(browser, axe, live_server, alice, settings):
    from users import operators

    settings.WEBPOP_SIGNUP = "open"
    operators.grant(alice)  # the invitations page is an operator's
    client = Client()
    client.force_login(alice)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    url = live_server.url
    problems = []
    for name, path in {"signup": "/signup/", "password-reset": "/password/reset/"}.items():
        problems += _check(browser, axe, url + path, name, None)
    signed_in = {
        "security": "/security/",
        "2fa-setup": "/security/2fa/setup/",
        "password-change": "/password/change/",
        "delete-account": "/security/delete/",
        "invitations": "/invitations/",
    }
    for name, path in signed_in.items():
        problems += _check(browser, axe, url + path, name, cookie)
    assert problems == [], "axe-core found serious/critical violations:\n" + "\n".join(problems)
