"""New-mail notifications: subscribing browsers, noticing new Inbox mail, delivering what the user chose.

Deliveries go to a push service on loopback (tests/push_service.py) that checks the VAPID
signature and decrypts the payload per RFC 8291, so each test reads what the browser would.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailbox import actions as mail_actions
from mailbox import sync
from mailbox.models import Message
from push import actions, delivery, vapid
from push.models import PushSettings, PushSubscription
from spam import actions as spam_actions
from spam import scanning
from spam.models import PendingScan
from tests.factories import build_message, make_account, store_message
from tests.push_service import SUBJECT, PushService, turn_push_on
from users.models import Session

# Real commits: notifications are published after commit, and the push service thread reads committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def push_on(settings):
    turn_push_on(settings)
    return settings


@pytest.fixture
def service():
    running = PushService().start()
    yield running
    running.stop()


def _form(service: PushService, key: str, name: str = "browser-1") -> dict:
    return {"endpoint": service.endpoint(name), "p256dh": service.p256dh, "auth": service.auth, "key": key}


def subscribe(client: Client, service: PushService, settings, name: str = "browser-1", **headers):
    return client.post(reverse("push:subscribe"), _form(service, settings.WEBPOP_VAPID_PUBLIC_KEY, name), **headers)


@pytest.fixture
def subscribed(push_on, service, alice, alice_client) -> PushSubscription:
    assert subscribe(alice_client, service, push_on).status_code == 200
    return PushSubscription.objects.get(owner=alice)


def _new_mail(alice, subject="Garden party", body="Bring cake, the door code is 4711.", uidl=None, account=None):
    account = account or make_account(alice)
    raw = build_message(subject, body, sender="Carol Example <carol@example.net>")
    return store_message(account, raw, uidl or f"u-{Message.objects.count()}-{subject}")


def _deliver_all(ids) -> list[str]:
    return [delivery.deliver(subscription_id) for subscription_id in ids]


# --- Subscribing ---------------------------------------------------------------------------------


def test_a_browser_subscribes_for_its_session(subscribed, alice, alice_client, service, push_on):
    session_key = alice_client.cookies[push_on.SESSION_COOKIE_NAME].value
    from users.sessions import key_hash

    assert subscribed.session_id == key_hash(session_key)
    assert (subscribed.endpoint, subscribed.p256dh, subscribed.auth) == (
        service.endpoint(),
        service.p256dh,
        service.auth,
    )
    assert subscribed.vapid_public == push_on.WEBPOP_VAPID_PUBLIC_KEY
    # The same browser again (after signing in anew): still one row.
    assert subscribe(alice_client, service, push_on).status_code == 200
    assert PushSubscription.objects.filter(owner=alice).count() == 1


def test_subscribing_needs_push_the_servers_key_and_a_usable_subscription(push_on, service, alice_client):
    url = reverse("push:subscribe")
    key = push_on.WEBPOP_VAPID_PUBLIC_KEY
    assert alice_client.get(url).status_code == 405
    other = alice_client.post(url, _form(service, vapid.public_key_of(vapid.generate_private_key())))
    assert other.status_code == 409 and other.json()["key"] == key  # the page subscribes again with this key
    for bad in ({"p256dh": "xyz"}, {"auth": "!!"}, {"endpoint": "https://user:pw@push.example.net/x"}, {"key": ""}):
        response = alice_client.post(url, {**_form(service, key), **bad})
        assert response.status_code == 400, bad
    push_on.WEBPOP_PUSH_ALLOW_PRIVATE = False
    assert alice_client.post(url, _form(service, key)).status_code == 400  # plain http: tests only
    push_on.WEBPOP_VAPID_PRIVATE_KEY = push_on.WEBPOP_VAPID_PUBLIC_KEY = ""
    off = alice_client.post(url, _form(service, key))
    assert off.status_code == 404 and off.json()["key"] is None  # push is off here: notifications in a tab only
    assert not PushSubscription.objects.exists()


def test_a_user_has_at_most_twenty_browsers(push_on, service, alice, alice_client):
    for number in range(actions.MAX_BROWSERS + 2):
        assert subscribe(alice_client, service, push_on, name=f"b{number}").status_code == 200
    kept = set(PushSubscription.objects.filter(owner=alice).values_list("endpoint", flat=True))
    assert len(kept) == actions.MAX_BROWSERS
    assert service.endpoint("b0") not in kept and service.endpoint("b21") in kept


def test_turning_off_and_removing_touch_only_the_users_own(subscribed, push_on, service, alice, bob, bob_client):
    assert subscribe(bob_client, service, push_on).status_code == 200  # the same endpoint, bob's own row
    bobs = PushSubscription.objects.get(owner=bob)
    assert bob_client.post(reverse("push:remove", args=[subscribed.id])).status_code == 404
    assert bob_client.post(reverse("push:unsubscribe"), {"endpoint": service.endpoint()}).json() == {"removed": True}
    assert PushSubscription.objects.filter(id=subscribed.id).exists()
    assert not PushSubscription.objects.filter(id=bobs.id).exists()
    alice_client = Client()
    alice_client.force_login(alice)
    response = alice_client.post(reverse("push:remove", args=[subscribed.id]))
    assert response.status_code == 302 and response["Location"].endswith("#notifications")
    assert not PushSubscription.objects.exists()


def test_signing_out_or_ending_the_session_stops_that_browsers_notifications(subscribed, push_on, service, alice):
    # Sign-out: the session's subscription goes with it.
    client = Client()
    client.force_login(alice)
    subscribe(client, service, push_on, name="laptop")
    assert PushSubscription.objects.filter(owner=alice).count() == 2
    client.post(reverse("logout"))
    assert list(PushSubscription.objects.values_list("id", flat=True)) == [subscribed.id]
    # "Sign out" of a lost phone from another session's security page.
    other = Client()
    other.force_login(alice)
    response = other.post(reverse("users:end_session", args=[subscribed.session_id]))
    assert response.status_code == 302
    assert not PushSubscription.objects.exists()


def test_ending_other_sessions_counts_sessions_not_subscriptions(subscribed, push_on, service, alice):
    phone = Client()
    phone.force_login(alice)
    subscribe(phone, service, push_on, name="phone")
    here = Client()
    here.force_login(alice)
    from users import actions as user_actions

    current = here.cookies[push_on.SESSION_COOKIE_NAME].value
    assert user_actions.end_other_sessions(alice, current) == 2  # two sessions, whatever they had subscribed
    assert not PushSubscription.objects.exists()
    assert Session.objects.filter(user=alice).count() == 1


def test_the_preferences_page_shows_the_control_and_the_users_browsers(subscribed, alice_client, bob_client):
    page = alice_client.get(reverse("accounts:preferences")).content.decode()
    assert 'id="push-enable"' in page and "Turn on notifications" in page
    assert f'data-server-key="{subscribed.vapid_public}"' in page
    assert 'id="push-browsers"' in page and "This browser" in page
    assert subscribed.endpoint not in page  # a capability: never shown
    assert 'id="push-browsers"' not in bob_client.get(reverse("accounts:preferences")).content.decode()


def test_without_keys_the_control_says_push_is_not_set_up(alice_client):
    page = alice_client.get(reverse("accounts:preferences")).content.decode()
    assert 'data-server-key=""' in page
    assert "notifications show only while webpop is open in a tab" in page


def test_the_choice_of_content_is_saved(alice, alice_client):
    assert actions.settings_for(alice.id).content == "count"  # the default
    response = alice_client.post(reverse("push:content"), {"content": "sender"})
    assert response.status_code == 302
    assert PushSettings.objects.get(user=alice).content == "sender"
    alice_client.post(reverse("push:content"), {"content": "body"})  # not a choice: nothing changes
    assert PushSettings.objects.get(user=alice).content == "sender"


# --- New mail and what a notification says -----------------------------------------------------------


def test_new_inbox_mail_sends_the_count_only_by_default(subscribed, alice, service, push_on, push_enqueued):
    message = _new_mail(alice)
    ids = actions.notice_new_mail(alice.id)
    assert ids == [subscribed.id] and push_enqueued == [("deliver", subscribed.id)]
    assert _deliver_all(ids) == ["delivered"]
    [got] = service.wait()
    service.check_claims(got, subject=SUBJECT, public_key=push_on.WEBPOP_VAPID_PUBLIC_KEY)
    assert got.payload == {"title": "New mail", "body": "1 unread", "url": "/", "tag": "webpop-new-mail", "unread": 1}
    for secret in (message.subject, "Carol", "carol@example.net", "4711", "door code"):
        assert secret.encode() not in got.plaintext
    row = PushSubscription.objects.get(id=subscribed.id)
    assert row.due_at is None and row.last_success_at is not None and row.failures == 0


def test_sender_and_subject_when_the_user_chose_them_never_the_body(subscribed, alice, service):
    actions.set_content(alice.id, "sender")
    _new_mail(alice, subject="Older", body="older body")
    newest = _new_mail(alice, subject="Garden party", body="Bring cake, the door code is 4711.")
    _deliver_all(actions.notice_new_mail(alice.id))
    [got] = service.wait()
    assert got.payload == {
        "title": "Carol Example",
        "body": "Garden party",
        "url": f"/message/{newest.id}/",
        "tag": "webpop-new-mail",
        "unread": 2,
    }
    assert b"4711" not in got.plaintext and b"cake" not in got.plaintext and b"Older" not in got.plaintext


def test_the_notification_speaks_the_subscribers_language(push_on, service, alice):
    german = Client(headers={"accept-language": "de"})
    german.force_login(alice)
    assert subscribe(german, service, push_on).status_code == 200
    assert PushSubscription.objects.get().language == "de"
    for n in range(3):
        _new_mail(alice, subject=f"Nachricht {n}")
    _deliver_all(actions.notice_new_mail(alice.id))
    [got] = service.wait()
    assert (got.payload["title"], got.payload["body"]) == ("Neue Mail", "3 ungelesen")


def test_only_new_unread_fetched_inbox_mail_is_new(subscribed, alice, push_enqueued):
    account = make_account(alice)
    before = _new_mail(alice, account=account)
    PushSettings.objects.filter(user=alice).update(notified_up_to=before.id)  # as when it was notified
    assert actions.notice_new_mail(alice.id) == []
    read = _new_mail(alice, subject="Read already", account=account)
    mail_actions.set_seen(alice.id, [read.id], True)
    spam = _new_mail(alice, subject="Spam", account=account)
    mail_actions.move(alice.id, [spam.id], "spam")
    imported = store_message(account, build_message("From an mbox file"), "import:" + "0" * 64)
    assert imported.folder == "inbox" and not imported.seen
    assert actions.notice_new_mail(alice.id) == []
    assert push_enqueued == []
    _new_mail(alice, subject="Really new", account=account)
    assert actions.notice_new_mail(alice.id) == [subscribed.id]
    assert actions.notice_new_mail(alice.id) == []  # noticed once: the same mail is not new again


def test_mail_waiting_for_its_spam_scan_is_announced_once_judged_and_never_when_filed_as_spam(
    subscribed, alice, push_enqueued
):
    account = make_account(alice, label="Trusting")
    assert spam_actions.set_provider_trust(alice.id, account.id, trust=True, authserv_id="mx.provider.example")
    account.refresh_from_db()
    head = b"From: Shop <news@shop.example>\r\nTo: alice@example.org\r\nSubject: Offer\r\n"
    spam = store_message(account, b"X-Spam-Flag: YES\r\n" + head + b"\r\nBuy now.\r\n", "scan-1")
    assert PendingScan.objects.filter(message=spam).exists()
    assert actions.notice_new_mail(alice.id) == []  # not judged yet: it may be spam
    assert scanning.scan_due().judged == 1
    assert Message.objects.get(id=spam.id).folder == "spam"
    assert actions.notice_new_mail(alice.id) == []

    clean = store_message(account, b"X-Spam-Flag: NO\r\n" + head + b"\r\nHello.\r\n", "scan-2")
    assert actions.notice_new_mail(alice.id) == []
    push_enqueued.clear()
    assert scanning.scan_due().judged == 1
    assert push_enqueued, "judging new Inbox mail looks for new mail"
    assert actions.notice_new_mail(alice.id) == [subscribed.id]
    assert PushSettings.objects.get(user=alice).notified_up_to == clean.id


def test_mail_already_there_when_notifications_are_turned_on_is_not_new(push_on, service, alice, alice_client):
    _new_mail(alice)
    assert subscribe(alice_client, service, push_on).status_code == 200
    assert actions.notice_new_mail(alice.id) == []


def test_mail_read_before_the_notification_went_out_sends_nothing(subscribed, alice, service):
    message = _new_mail(alice)
    ids = actions.notice_new_mail(alice.id)
    mail_actions.set_seen(alice.id, [message.id], True)
    assert _deliver_all(ids) == ["nothing"]
    assert service.received == [] and PushSubscription.objects.get().due_at is None


def test_a_gone_subscription_is_deleted(subscribed, alice, service):
    service.answers.append(410)
    _new_mail(alice)
    assert _deliver_all(actions.notice_new_mail(alice.id)) == ["gone"]
    assert not PushSubscription.objects.exists()


def test_a_failing_push_service_is_tried_again_from_the_row_then_given_up(subscribed, alice, service):
    service.answers.extend([503] * delivery.MAX_ATTEMPTS)
    _new_mail(alice)
    [subscription_id] = actions.notice_new_mail(alice.id)
    assert delivery.deliver(subscription_id) == "retry"
    row = PushSubscription.objects.get(id=subscription_id)
    assert row.failures == 1 and row.attempts == 1 and row.due_at > timezone.now() and "503" in row.last_error
    assert delivery.deliver(subscription_id) == "skipped"  # not due yet
    assert delivery.dispatch_due() == []
    for attempt in range(2, delivery.MAX_ATTEMPTS + 1):
        later = PushSubscription.objects.get(id=subscription_id).due_at + dt.timedelta(seconds=1)
        assert delivery.dispatch_due(now=later) == [subscription_id]  # the sweep publishes the retry when due
        PushSubscription.objects.filter(id=subscription_id).update(due_at=timezone.now())
        assert delivery.deliver(subscription_id) == ("retry" if attempt < delivery.MAX_ATTEMPTS else "failed")
    row = PushSubscription.objects.get(id=subscription_id)
    assert row.due_at is None and row.failures == delivery.MAX_ATTEMPTS and len(service.received) == 5
    # The next new mail starts afresh, and a delivery resets the count.
    _new_mail(alice, subject="Next")
    assert _deliver_all(actions.notice_new_mail(alice.id)) == ["delivered"]
    assert PushSubscription.objects.get(id=subscription_id).failures == 0


def test_mail_noticed_while_a_notification_is_on_its_way_is_sent_too(subscribed, alice, service):
    _new_mail(alice, subject="First")
    [subscription_id] = actions.notice_new_mail(alice.id)

    def more_mail_meanwhile():
        service.on_request = None
        _new_mail(alice, subject="Second")
        assert actions.notice_new_mail(alice.id) == [subscription_id]  # its own task would find the claim

    service.on_request = more_mail_meanwhile
    assert delivery.deliver(subscription_id) == "delivered"
    assert [got.payload["unread"] for got in service.wait(2)] == [1, 2]
    assert PushSubscription.objects.get(id=subscription_id).due_at is None


def test_a_worker_that_died_holding_a_notification_is_replaced(subscribed, alice, service):
    _new_mail(alice)
    [subscription_id] = actions.notice_new_mail(alice.id)
    long_ago = timezone.now() - delivery.CLAIM_LEASE - dt.timedelta(seconds=1)
    PushSubscription.objects.filter(id=subscription_id).update(claimed_at=long_ago, attempts=1)  # died mid-send
    assert delivery.deliver(subscription_id) == "delivered"
    assert len(service.wait()) == 1


def test_subscriptions_made_with_an_old_server_key_are_not_sent_to(subscribed, alice, service, push_on):
    private = vapid.generate_private_key()
    push_on.WEBPOP_VAPID_PRIVATE_KEY, push_on.WEBPOP_VAPID_PUBLIC_KEY = private, vapid.public_key_of(private)
    _new_mail(alice)
    assert actions.notice_new_mail(alice.id) == []
    PushSubscription.objects.update(due_at=timezone.now())
    assert delivery.deliver(subscribed.id) == "refused"
    assert service.received == []


# --- The sync, and beat's sweep ------------------------------------------------------------------


@pytest.mark.dovecot
def test_a_sync_that_stores_mail_asks_for_notifications(subscribed, alice, pop_user, dovecot_account, push_enqueued):
    account = dovecot_account()
    assert sync.sync_account(account.id).error is None
    assert push_enqueued == []  # nothing fetched, nothing asked
    pop_user.deliver(build_message("Fetched", "fetched body"))
    result = sync.sync_account(account.id)
    assert result.fetched == 1 and result.error is None
    assert push_enqueued == [("notify", alice.id)]


@pytest.mark.dovecot
def test_users_without_subscriptions_cost_the_sync_no_task(push_on, alice, pop_user, dovecot_account, push_enqueued):
    pop_user.deliver(build_message("Fetched"))
    assert sync.sync_account(dovecot_account().id).fetched == 1
    assert push_enqueued == []


@pytest.mark.dovecot
def test_push_failing_never_stops_ingest(subscribed, alice, pop_user, dovecot_account, monkeypatch):
    from push import tasks

    def broker_down(*args):
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(tasks.notify_new_mail, "delay", broker_down)
    pop_user.deliver(build_message("Stored anyway"))
    result = sync.sync_account(dovecot_account().id)
    assert result.error is None and result.fetched == 1
    assert Message.objects.filter(owner=alice, subject="Stored anyway").exists()
    # The new mail is on the rows: the sweep finds it.
    assert delivery.sweep() == [subscribed.id] and PushSubscription.objects.get().due_at is not None


def test_the_sweep_notices_new_mail_whose_task_was_lost(subscribed, alice, service, push_enqueued):
    _new_mail(alice)  # stored, but the task that should have noticed it never ran
    from push import tasks

    assert tasks.sweep() == 1  # noticed, and its delivery published by the sweep's task
    assert push_enqueued == [("deliver", subscribed.id)]
    assert delivery.sweep() == []  # noticed once
    # A lost delivery task: published again once it is overdue.
    later = timezone.now() + delivery.REDISPATCH_AFTER + dt.timedelta(seconds=1)
    assert delivery.dispatch_due(now=later) == [subscribed.id]
    assert delivery.deliver(subscribed.id) == "delivered"
    assert json.loads(service.wait()[0].plaintext)["unread"] == 1


def test_the_sweep_does_nothing_without_keys(alice, settings):
    settings.WEBPOP_VAPID_PRIVATE_KEY = settings.WEBPOP_VAPID_PUBLIC_KEY = ""
    assert delivery.sweep() == []


def test_the_beat_schedule_sweeps_every_tick(settings):
    from webpop.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["push-sweep"]
    assert entry["task"] == "push.tasks.sweep" and entry["task"] in app.tasks
    assert entry["schedule"] == settings.CELERY_BEAT_SCHEDULE["poll-due-accounts"]["schedule"]


@pytest.mark.parametrize(
    ("user_agent", "named"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
            ("Chrome", "Linux"),
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 "
            "Safari/537.36 Edg/156.0.0.0",
            ("Edge", "Windows"),
        ),
        ("Mozilla/5.0 (Android 15; Mobile; rv:140.0) Gecko/140.0 Firefox/140.0", ("Firefox", "Android")),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.5 Mobile/15E148 Safari/604.1",
            ("Safari", "iOS"),
        ),
        ("", ("", "")),
    ],
)
def test_browsers_are_listed_by_a_short_name(user_agent, named):
    from push.browsers import describe

    assert describe(user_agent) == named


def test_the_list_names_each_browser_shortly(push_on, service, alice):
    client = Client(headers={"user-agent": "Mozilla/5.0 (Android 15; Mobile; rv:140.0) Gecko/140.0 Firefox/140.0"})
    client.force_login(alice)
    assert subscribe(client, service, push_on).status_code == 200
    page = client.get(reverse("accounts:preferences")).content.decode()
    assert "Firefox on Android" in page


# --- The installable app's files ------------------------------------------------------------------


def _png_size(path) -> str:
    import struct

    data = Path(path).read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return f"{width}x{height}"


def test_the_manifest_names_the_app_and_its_icons_at_their_real_sizes(client, alice):
    from django.contrib.staticfiles import finders
    from django.templatetags.static import static

    response = client.get(reverse("push:manifest"))  # browsers fetch it without cookies
    assert response.status_code == 200 and response["Content-Type"] == "application/manifest+json"
    manifest = response.json()
    assert (manifest["name"], manifest["start_url"], manifest["scope"], manifest["display"]) == (
        "webpop",
        "/",
        "/",
        "standalone",
    )
    png_sizes, purposes = set(), set()
    for icon in manifest["icons"]:
        path = finders.find(icon["src"].removeprefix(static("")))
        assert path, f"{icon['src']} is not a static file"
        if icon["type"] == "image/png":
            assert _png_size(path) == icon["sizes"], icon["src"]
            png_sizes.add(icon["sizes"])
            purposes.add(icon.get("purpose", "any"))
    assert {"192x192", "512x512"} <= png_sizes and purposes == {"any", "maskable"}
    german = Client(headers={"accept-language": "de"}).get(reverse("push:manifest")).json()
    assert german["lang"] == "de" and german["description"].startswith("Ihre POP3-Mail")


def test_every_page_links_the_manifest_and_signed_in_pages_load_the_script(client, alice_client):
    login = client.get(reverse("login")).content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in login
    assert "js/push.js" not in login  # nothing to register or ask for before signing in
    inbox = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in inbox
    assert 'data-sw-url="/sw.js"' in inbox and 'data-subscribe-url="/notifications/subscribe/"' in inbox


def test_the_service_worker_is_served_from_the_root_and_keeps_only_the_shell(client, alice):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript") and response["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    body = response.content.decode()
    shell = json.loads(body.split("const SHELL = ", 1)[1].split(";\n", 1)[0])
    assert "/offline/" in shell and "/static/css/app.css" in shell
    assert all(url.startswith("/static/") or url == "/offline/" for url in shell)
    assert 'addEventListener("push"' in body and 'addEventListener("notificationclick"' in body


def test_the_offline_page_holds_nothing_of_the_users(alice_client, alice):
    page = alice_client.get(reverse("push:offline")).content.decode()
    assert "No connection" in page and "alice" not in page
