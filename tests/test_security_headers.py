"""Every page carries a strict Content-Security-Policy and the other security headers; templates need nothing inline."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from tests import urlwalk
from webpop.security import TRIX_STYLE_HASHES, app_csp

REPO = Path(__file__).resolve().parent.parent
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
DATA_BLOCK = re.compile(r"""\btype=["']?application/(?:ld\+)?json""", re.IGNORECASE)  # data, never run
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|<[a-z][^>]*\sstyle\s*=", re.IGNORECASE)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)


def policy(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def inline_problems(html: str) -> list[str]:
    scripts = [m.group(0) for m in INLINE_SCRIPT.finditer(html)]
    problems = [f"inline script {tag!r}" for tag in scripts if not DATA_BLOCK.search(tag)]
    problems += [f"event handler in {m.group(0)[:80]!r}" for m in EVENT_HANDLER.finditer(html)]
    problems += [f"inline style in {m.group(0)[:80]!r}" for m in INLINE_STYLE.finditer(html)]
    problems += [f"javascript: URL {m.group(0)!r}" for m in JS_URL.finditer(html)]
    return problems


@pytest.mark.django_db
def test_the_app_policy_allows_no_inline_script_plugins_framing_or_base(client):
    csp = policy(client.get("/login/")["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    # Our stylesheets, and the rich text editor's two built-in style blocks by their exact hashes; nothing inline.
    assert csp["style-src"] == ["'self'", *TRIX_STYLE_HASHES]
    assert csp["img-src"] == ["'self'", "data:", "blob:"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    # Forms post to us; the "Sign in with …" forms' answers redirect to the providers' sign-in pages.
    assert csp["form-action"] == ["'self'", "https://accounts.google.com", "https://login.microsoftonline.com"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert policy(app_csp())["form-action"] == ["'self'"]


TEMPLATES = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "templates").rglob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES)
def test_templates_have_no_inline_script_handlers_or_styles(template):
    assert inline_problems((REPO / template).read_text()) == []


def test_the_checks_catch_what_they_look_for():
    bad = '<script>alert(1)</script><a href="javascript:x()">x</a><img src=x onerror="y()"><p style="color:red">'
    assert len(inline_problems(bad)) == 4
    good = '<script src="/static/js/a.js" defer></script><script type="application/json">{}</script>'
    assert inline_problems(good) == []


@pytest.mark.django_db
def test_every_page_sends_the_policy_and_security_headers(alice, bob, settings):
    settings.WEBPOP_DNS_NAMESERVERS = ["127.0.0.1:9"]
    settings.WEBPOP_SIGNUP = "open"  # the sign-up pages in full, not the "closed" notice
    alice.is_staff = alice.is_superuser = True  # the admin's pages too
    alice.save()
    world = urlwalk.build_world(alice, bob)
    world.signer = alice
    client = Client()
    client.force_login(alice)
    session = client.session  # she gave her second factor: the admin's pages open
    session[DEVICE_ID_SESSION_KEY] = world.authenticator.persistent_id
    session.save()
    pages = admin_pages = 0
    problems = []
    for route in urlwalk.routes():
        if route.key in ("logout", "admin:logout"):
            continue  # would end the session the rest of the walk uses
        case = urlwalk.COVERAGE.get(route.key)
        if urlwalk.is_admin(route.key):
            if not route.named or "object_id" in route.route or "content_type_id" in route.route:
                continue  # the admin's object pages: same templates as its lists
            urls = [urlwalk.url_for(route, urlwalk.admin_kwargs(route, world))]
        elif case is None:
            urls = [urlwalk.url_for(route, urlwalk.PUBLIC[route.key](world))]
        elif "GET" not in case.methods.split():
            continue
        else:
            url = urlwalk.url_for(route, case.args(world))
            urls = [url + ("?" + urlencode(query) if query else "") for query in case.queries(world)]
        for url in urls:
            response = client.get(url)
            if not response.get("Content-Type", "").startswith("text/html") or response.status_code >= 300:
                continue
            pages += 1
            admin_pages += urlwalk.is_admin(route.key)
            csp = policy(response.get("Content-Security-Policy", ""))
            framed = route.key == "mailbox:message_body"  # the sandboxed mail body: its own, stricter policy
            expected_frame = ("SAMEORIGIN", ["'self'"]) if framed else ("DENY", ["'none'"])
            if "'unsafe-inline'" in csp.get("script-src", csp.get("default-src", ["'unsafe-inline'"])):
                problems.append(f"{url}: scripts not restricted ({response.get('Content-Security-Policy')!r})")
            if "'unsafe-eval'" in csp.get("script-src", []):
                problems.append(f"{url}: eval allowed")
            if csp.get("object-src", csp.get("default-src")) != ["'none'"]:
                problems.append(f"{url}: plugins allowed")
            if csp.get("base-uri") != ["'none'"]:
                problems.append(f"{url}: base-uri not 'none'")
            if (response.get("X-Frame-Options"), csp.get("frame-ancestors")) != expected_frame:
                problems.append(f"{url}: framing {response.get('X-Frame-Options')} / {csp.get('frame-ancestors')}")
            if response.get("X-Content-Type-Options") != "nosniff":
                problems.append(f"{url}: no nosniff")
            if response.get("Referrer-Policy") not in ("same-origin", "no-referrer"):
                problems.append(f"{url}: Referrer-Policy {response.get('Referrer-Policy')}")
            if not framed:
                problems += [f"{url}: {p}" for p in inline_problems(response.content.decode())]
    assert not problems, "\n".join(problems)
    assert pages >= 20
    assert admin_pages >= 10


# --- In Chromium: the policy is enforced and the app works under it ------------------------------


def _login_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


@pytest.mark.django_db(transaction=True)
def test_the_app_runs_in_chromium_without_a_single_policy_violation(browser, live_server, alice, bob, settings):
    settings.WEBPOP_DNS_NAMESERVERS = ["127.0.0.1:9"]
    world = urlwalk.build_world(alice, bob)
    context = browser.new_context()
    context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": _login_cookie(alice), "url": live_server.url}]
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        for path in [
            reverse("mailbox:inbox"),
            reverse("mailbox:message", args=[world.message.id]),
            reverse("accounts:list"),
            reverse("accounts:detail", args=[world.account.id]),
            reverse("accounts:preferences"),
            reverse("mailbox:folders"),
            reverse("mailbox:rules"),
            reverse("mailbox:import"),
            reverse("mailbox:remote_image_settings"),
        ]:
            page.goto(live_server.url + path, wait_until="load")
            assert page.locator("main").count() == 1, path
        page.click("#theme-toggle")  # static/js/theme.js, under the policy
        page.goto(live_server.url + reverse("accounts:add"), wait_until="load")
        with page.expect_response(lambda r: "/accounts/suggest/" in r.url):
            page.fill("[name=address]", "someone@fastmail.com")
            page.locator("[name=address]").blur()  # static/js/account_add.js asks the server (connect-src)
        page.wait_for_function("() => document.querySelector('[name=host]').value === 'pop.fastmail.com'")
        violations = [text for text in console if "Content Security Policy" in text]
        assert violations == []
        # The browser really enforces it: an injected inline script is refused, and says so.
        with page.expect_console_message(lambda message: "Content Security Policy" in message.text):
            page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1'; "
                          "document.body.appendChild(s); }")  # fmt: skip
        assert page.evaluate("() => window.ran") is None
    finally:
        context.close()
