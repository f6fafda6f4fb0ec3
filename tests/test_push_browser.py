"""In Chromium: the "Turn on notifications" control, the service worker, Web Push end to end, the installable app.

What runs for real: Chromium's permission for notifications (granted by the test, as a person
would in the prompt), the service worker's registration and its offline shell, the server's
subscription endpoint, the encrypted push to a push service on loopback (which checks the
VAPID signature and decrypts the RFC 8291 payload), and the service worker showing the
notification for that decrypted message (delivered through Chromium's DevTools protocol, as
its "Push" button does).

What cannot run here: ``pushManager.subscribe`` itself. Chromium's push subscriptions come from
Google's push service (FCM), which a machine without the internet cannot reach; headless
Chromium answers "Registration failed - permission denied". The page's ``PushManager`` therefore
hands out a subscription for the loopback push service instead (``INJECT`` below): the endpoint
and keys a browser would give, with the key pair held by the test's push service.

Screenshots of the Notifications section (1366×850 and 390×844, light and dark, English and
German) go to test-artifacts/screens/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from push import actions, delivery
from push.models import PushSubscription
from tests.factories import build_message, make_account, store_message
from tests.push_service import PushService, turn_push_on
from tests.test_accessibility import AXE_OPTIONS, _describe
from users.sessions import key_hash

pytestmark = pytest.mark.django_db(transaction=True)

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
DESKTOP = {"width": 1366, "height": 850}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000

# The browser's PushManager, handing out a subscription to the loopback push service (see above).
# It lives in localStorage, as a browser keeps its subscription across page loads.
INJECT = """
(() => {
  const config = %s;
  const KEY = "test-push-subscription";
  const text = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)));
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
  function make(serverKey) {
    return {
      endpoint: config.endpoint,
      expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: bytes(serverKey) },
      toJSON() {
        return { endpoint: config.endpoint, expirationTime: null, keys: { p256dh: config.p256dh, auth: config.auth } };
      },
      async unsubscribe() { localStorage.removeItem(KEY); return true; },
    };
  }
  PushManager.prototype.subscribe = async function (options) {
    const key = options.applicationServerKey;
    const buffer = key.buffer ? key.buffer.slice(key.byteOffset, key.byteOffset + key.byteLength) : key;
    localStorage.setItem(KEY, text(buffer));
    return make(localStorage.getItem(KEY));
  };
  PushManager.prototype.getSubscription = async function () {
    const key = localStorage.getItem(KEY);
    return key ? make(key) : null;
  };
})();
"""
# Counts every time a page asks for permission.
COUNT_ASKS = """
(() => {
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = function () {
    localStorage.setItem("asked", String(Number(localStorage.getItem("asked") || 0) + 1));
    return ask();
  };
})();
"""


@pytest.fixture
def service():
    running = PushService().start()
    yield running
    running.stop()


def _cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def _page(browser, live_server, cookie, *, service=None, permissions=(), viewport=DESKTOP, scheme="light", lang="en"):
    context = browser.new_context(
        viewport=viewport, color_scheme=scheme, permissions=list(permissions), locale=lang, base_url=live_server.url
    )
    context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
    context.add_cookies([{"name": django_settings.LANGUAGE_COOKIE_NAME, "value": lang, "url": live_server.url}])
    if service is not None:
        config = {"endpoint": service.endpoint(), "p256dh": service.p256dh, "auth": service.auth}
        context.add_init_script(INJECT % json.dumps(config))
    context.add_init_script(COUNT_ASKS)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    return context, page


def _until(page, expression: str, timeout_ms: int = TIMEOUT_MS) -> None:
    """Until ``expression`` (evaluated in the page) holds; wait_for_function would need eval, which our CSP forbids."""
    for _ in range(timeout_ms // 100):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {expression}")


def _status(page) -> str:
    return page.locator("#push-status").inner_text()


def _registration(page) -> list:
    return page.evaluate("navigator.serviceWorker.ready.then(r => [r.scope, r.active && r.active.scriptURL])")


def _notifications(page) -> list:
    return page.evaluate(
        "navigator.serviceWorker.ready.then(r => r.getNotifications())"
        ".then(list => list.map(n => ({title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url})))"
    )


def _push_into_the_service_worker(context, page, origin: str, data: str) -> None:
    """What Chromium does with a push message from its push service: the service worker's push event.

    Sent once the worker is activated, and again (as push services redeliver) should no notification appear.
    """
    cdp = context.new_cdp_session(page)
    versions: dict[str, dict] = {}
    cdp.on(
        "ServiceWorker.workerVersionUpdated",
        lambda event: versions.update({v["versionId"]: v for v in event["versions"]}),
    )
    cdp.send("ServiceWorker.enable")
    for _ in range(100):
        active = [v for v in versions.values() if v["scriptURL"] == origin + "/sw.js" and v["status"] == "activated"]
        if active:
            break
        page.wait_for_timeout(100)
    [version] = active
    for _try in range(3):
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": origin, "registrationId": version["registrationId"], "data": data},
        )
        for _ in range(30):
            if page.evaluate("navigator.serviceWorker.ready.then(r => r.getNotifications()).then(l => l.length)"):
                return
            page.wait_for_timeout(100)
    raise AssertionError("the service worker showed no notification")


def test_turning_notifications_on_subscribes_this_browser_and_a_push_is_shown(
    browser, live_server, alice, service, settings
):
    server_key = turn_push_on(settings)
    cookie = _cookie(alice)
    context, page = _page(browser, live_server, cookie, service=service, permissions=["notifications"])
    page.goto(reverse("accounts:preferences"))
    enable = page.get_by_role("button", name="Turn on notifications")
    assert enable.is_visible()
    assert _status(page) == "Get a notification on this device when new mail arrives."
    enable.click()
    _until(page, "document.getElementById('push-status').textContent.startsWith('On:')")
    assert page.evaluate("localStorage.getItem('asked')") == "1"

    # The service worker: registered for the whole site, from /sw.js.
    assert _registration(page) == [live_server.url + "/", live_server.url + "/sw.js"]
    # The subscription reached the server, for this browser session, with the server's key.
    row = PushSubscription.objects.get(owner=alice)
    assert (row.endpoint, row.p256dh, row.auth, row.vapid_public) == (
        service.endpoint(),
        service.p256dh,
        service.auth,
        server_key,
    )
    assert row.session_id == key_hash(cookie)
    page.reload()
    assert page.get_by_role("button", name="Turn off notifications").is_visible()
    assert "This browser" in page.locator("#push-browsers").inner_text()

    # New mail: the server encrypts a push for this browser; the push service decrypts it...
    account = make_account(alice)
    store_message(account, build_message("Garden party", "The door code is 4711."), "u1")
    assert [delivery.deliver(i) for i in actions.notice_new_mail(alice.id)] == ["delivered"]
    [got] = service.wait()
    assert got.payload == {"title": "New mail", "body": "1 unread", "url": "/", "tag": "webpop-new-mail", "unread": 1}
    # ... and hands it to the browser, whose service worker shows it.
    _push_into_the_service_worker(context, page, live_server.url, got.plaintext.decode())
    _until(page, "navigator.serviceWorker.ready.then(r => r.getNotifications()).then(l => l.length > 0)")
    assert _notifications(page) == [
        {"title": "New mail", "body": "1 unread", "tag": "webpop-new-mail", "url": live_server.url + "/"}
    ]

    # Turning it off forgets the subscription on the server too.
    page.get_by_role("button", name="Turn off notifications").click()
    _until(page, "document.getElementById('push-enable').hidden === false")
    assert not PushSubscription.objects.exists()
    assert page.errors == []
    context.close()


def test_after_signing_in_again_the_browser_subscribes_again(browser, live_server, alice, service, settings):
    turn_push_on(settings)
    context, page = _page(browser, live_server, _cookie(alice), service=service, permissions=["notifications"])
    page.goto(reverse("accounts:preferences"))
    page.get_by_role("button", name="Turn on notifications").click()
    _until(page, "document.getElementById('push-status').textContent.startsWith('On:')")
    assert PushSubscription.objects.count() == 1
    # Signing out deletes the session's subscription; signing in again (a new session) sends it once more.
    page.locator(".user-menu summary").click()  # signing out is in the user menu
    page.get_by_role("button", name="Sign out alice").click()
    page.wait_for_url("**/login/**")
    assert not PushSubscription.objects.exists()
    new_cookie = _cookie(alice)
    context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": new_cookie, "url": live_server.url}])
    page.goto(reverse("mailbox:inbox"))
    page.wait_for_load_state("load")
    for _ in range(100):
        if PushSubscription.objects.exists():
            break
        page.wait_for_timeout(100)
    assert PushSubscription.objects.get().session_id == key_hash(new_cookie)
    assert page.evaluate("localStorage.getItem('asked')") == "1"  # never asked again
    context.close()


def test_without_push_on_the_server_notifications_work_while_a_tab_is_open(browser, live_server, alice):
    context, page = _page(browser, live_server, _cookie(alice), permissions=["notifications"])
    page.goto(reverse("accounts:preferences"))
    page.get_by_role("button", name="Turn on notifications").click()
    _until(page, "document.getElementById('push-status').textContent.startsWith('On while')")
    assert "does not send notifications when webpop is closed" in _status(page)
    assert not PushSubscription.objects.exists()
    # The open inbox's notice of new mail (static/js/mail.js calls this when the tab is hidden).
    page.goto(reverse("mailbox:inbox"))
    # Once the page's worker is active: webpopNotify waits 5 s for it, then shows a page notification,
    # which the worker's list does not hold (a loaded test machine can take that long to start one).
    _until(page, "navigator.serviceWorker.getRegistration().then(r => !!(r && r.active))")
    page.evaluate("window.webpopNotify('New mail', '2 unread')")
    _until(page, "navigator.serviceWorker.ready.then(r => r.getNotifications()).then(l => l.length > 0)")
    assert [(n["title"], n["body"], n["tag"]) for n in _notifications(page)] == [
        ("New mail", "2 unread", "webpop-new-mail")
    ]
    assert page.errors == []
    context.close()


def test_the_browser_is_never_asked_unprompted_and_a_refusal_is_explained(browser, live_server, alice, settings):
    turn_push_on(settings)
    make_account(alice)
    # Headless Chromium refuses permission unless the test grants it: what a person who blocked it sees.
    context, page = _page(browser, live_server, _cookie(alice))
    for url in (reverse("mailbox:inbox"), reverse("users:security"), reverse("accounts:preferences")):
        page.goto(url)
        page.wait_for_load_state("load")
    assert page.evaluate("localStorage.getItem('asked')") is None
    assert _status(page).startswith("Notifications are blocked for webpop in this browser.")
    assert page.locator("#push-enable").is_hidden() and page.locator("#push-disable").is_hidden()
    context.close()


def test_the_app_is_installable_and_its_shell_works_offline(browser, live_server, alice):
    context, page = _page(browser, live_server, _cookie(alice))
    page.goto(reverse("mailbox:inbox"))
    assert _registration(page)[0] == live_server.url + "/"  # registered on every signed-in page
    cdp = context.new_cdp_session(page)
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["errors"] == [] and manifest["url"] == live_server.url + "/manifest.webmanifest"
    # Chromium's own check: nothing in the manifest, icons or service worker stands in the way. (A test
    # browser's profile is a private one, where Chromium installs nothing: that is the one error left.)
    errors = [error["errorId"] for error in cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]]
    assert errors == ["in-incognito"]
    page.reload()  # now controlled by the service worker
    _until(page, "navigator.serviceWorker.controller !== null")
    context.set_offline(True)
    page.goto(reverse("mailbox:inbox"))
    assert page.get_by_role("heading", name="No connection").is_visible()
    assert "alice" not in page.content()  # the offline page holds nothing of anyone's
    context.set_offline(False)
    page.goto(reverse("mailbox:inbox"))
    assert page.locator("#mail").is_visible()
    # Only the shell was kept: no page, message or API answer.
    kept = page.evaluate(
        "caches.keys().then(names => Promise.all(names.map(name => caches.open(name).then(c => c.keys()))))"
        ".then(lists => lists.flat().map(request => request.url))"
    )
    assert {live_server.url + "/offline/", live_server.url + "/static/css/app.css"} <= set(kept)
    assert all(url.startswith(live_server.url + "/static/") or url == live_server.url + "/offline/" for url in kept)
    context.close()


def test_screenshots_of_the_control_and_no_serious_accessibility_problems(
    browser, live_server, alice, settings, service
):
    from axe_playwright_python.sync_playwright import Axe

    turn_push_on(settings)
    SCREENS.mkdir(parents=True, exist_ok=True)
    cookie = _cookie(alice)
    axe = Axe()
    problems = []
    for lang in ("en", "de"):
        for scheme in ("light", "dark"):
            for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                context, page = _page(
                    browser,
                    live_server,
                    cookie,
                    service=service,
                    permissions=["notifications"],
                    viewport=viewport,
                    scheme=scheme,
                    lang=lang,
                )
                for state in ("off", "on"):
                    page.goto(reverse("accounts:preferences"))
                    page.wait_for_load_state("load")
                    if state == "on":
                        page.locator("#push-enable").click()
                        _until(page, "document.getElementById('push-disable').hidden === false")
                        page.reload()
                        _until(page, "document.getElementById('push-disable').hidden === false")
                    page.locator("#notifications").scroll_into_view_if_needed()
                    name = f"push-preferences-{state}-{size}-{scheme}-{lang}"
                    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)
                    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth"), name
                    if size == "desktop":
                        violations = axe.run(page, options=AXE_OPTIONS).response["violations"]
                        problems += _describe(f"preferences-{state}-{lang}", scheme, violations)
                assert page.errors == []
                context.close()
                PushSubscription.objects.all().delete()
    assert problems == [], "\n".join(problems)
