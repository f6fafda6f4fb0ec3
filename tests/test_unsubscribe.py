"""Unsubscribing from a list (unsubscribe/): the one-click POST, the mailto e-mail, the confirmation, the record."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailbox.models import Folder, Message
from outgoing import send
from outgoing.models import OutgoingMessage, OutgoingState
from tests.conftest import wait_for
from tests.factories import make_account, store_message
from tests.https_server import HttpsServer
from unsubscribe import actions, oneclick, tasks
from unsubscribe.models import UnsubscribeRequest

pytestmark = pytest.mark.django_db
ONE_CLICK = "List-Unsubscribe=One-Click"


def newsletter(account, unsubscribe: str, *, post: str = ONE_CLICK, uidl: str = "n-1", subject: str = "Issue 12"):
    lines = [
        "From: Weekly News <news@weekly.example>",
        "To: alice@example.org",
        f"Subject: {subject}",
        "Date: Thu, 26 Nov 2026 09:00:00 +0000",
        f"Message-ID: <{uidl}@weekly.example>",
        "List-Id: Weekly News <weekly.example>",
        f"List-Unsubscribe: {unsubscribe}",
    ]
    if post:
        lines.append(f"List-Unsubscribe-Post: {post}")
    raw = ("\r\n".join(lines) + "\r\n\r\nThis week: nothing new.\r\n").encode()
    return store_message(account, raw, uidl)


def confirm_url(message) -> str:
    return reverse("unsubscribe:confirm", args=[message.id])


@pytest.fixture
def confirm(django_capture_on_commit_callbacks):
    """POST the confirmation, running what it leaves for after the commit (publishing the task)."""

    def post(client, message, method: str):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(confirm_url(message), {"method": method})

    return post


def page(client, message) -> str:
    response = client.get(confirm_url(message))
    assert response.status_code == 200
    return response.content.decode()


# --- The one-click request --------------------------------------------------------------------


def test_one_click_posts_the_form_and_nothing_about_the_reader(list_server):
    result = oneclick.post(list_server.url("/u/12"))
    assert result == oneclick.Result(oneclick.Outcome.OK, 200, "HTTP 200 OK")
    [request] = list_server.requests
    assert (request.method, request.path, request.body) == ("POST", "/u/12", b"List-Unsubscribe=One-Click")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["user-agent"] == oneclick.USER_AGENT
    assert not {"cookie", "referer", "origin", "x-forwarded-for", "authorization"} & set(request.headers)


def test_an_idn_host_is_requested_by_its_ascii_name(list_server):
    # Resolves like any host: the non-ASCII name becomes xn-- for DNS, TLS and the Host header.
    result = oneclick.post(f"https://localhöst.invalid:{list_server.port}/u/12")
    assert result.outcome is oneclick.Outcome.TEMPORARY
    assert "xn--localhst-" in result.detail  # what was looked up
    assert list_server.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_private_address_is_refused_with_production_settings_and_nothing_is_sent(list_server, settings, host):
    settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = False  # as in production
    result = oneclick.post(list_server.url("/u/12", host))
    assert result.outcome is oneclick.Outcome.NOT_ALLOWED
    assert list_server.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed_even_to_a_reachable_private_address(list_server, tmp_path, status):
    internal = HttpsServer(tmp_path / "internal-pki")
    try:
        internal.routes["/admin/delete-everything"] = (200, {})
        list_server.routes["/u/12"] = (status, {"Location": internal.url("/admin/delete-everything")})
        result = oneclick.post(list_server.url("/u/12"))
        assert result.outcome is oneclick.Outcome.REDIRECT
        assert result.status == status
        assert len(list_server.requests) == 1
        assert internal.requests == []
    finally:
        internal.close()


def test_an_untrusted_certificate_is_refused(list_server, settings):
    settings.WEBPOP_UNSUBSCRIBE_CA_FILE = None  # the system CAs only: the test CA is not among them
    result = oneclick.post(list_server.url("/u/12"))
    assert result.outcome is oneclick.Outcome.TLS
    assert list_server.requests == []


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "ok"), (202, "ok"), (204, "ok"), (400, "refused"), (404, "refused"), (410, "refused"),
     (408, "temporary"), (429, "temporary"), (500, "temporary"), (503, "temporary")],
)  # fmt: skip
def test_the_answer_decides(list_server, status, outcome):
    list_server.routes["/u/12"] = (status, {})
    assert oneclick.post(list_server.url("/u/12")).outcome.value == outcome


def test_only_https_is_posted_to(list_server):
    assert oneclick.post(list_server.url("/u/12").replace("https:", "http:")).outcome is oneclick.Outcome.BAD_URL
    assert list_server.requests == []


# --- Confirming, and what is recorded ----------------------------------------------------------


@pytest.fixture
def account(alice):
    return make_account(alice)


def test_opening_the_confirmation_never_unsubscribes(alice_client, account, list_server, unsubscribe_enqueued):
    message = newsletter(account, f"<{list_server.url('/u/12')}>")
    html = page(alice_client, message)
    assert "Unsubscribe from <bdi>Weekly News</bdi>?" in html
    assert 'name="method" value="one_click"' in html and "csrfmiddlewaretoken" in html
    assert alice_client.get(reverse("unsubscribe:status", args=[message.id])).json() == {"kind": "none"}
    assert not UnsubscribeRequest.objects.exists()
    assert unsubscribe_enqueued == []
    assert list_server.requests == []


def test_confirming_needs_the_csrf_token(alice, account, list_server, unsubscribe_enqueued):
    message = newsletter(account, f"<{list_server.url('/u/12')}>")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(confirm_url(message), {"method": "one_click"}).status_code == 403
    assert not UnsubscribeRequest.objects.exists()
    assert unsubscribe_enqueued == []


def test_confirming_records_the_request_and_the_task_unsubscribes(
    alice_client, account, list_server, unsubscribe_enqueued, confirm
):
    message = newsletter(account, f"<mailto:leave@weekly.example>, <{list_server.url('/u/12')}>")
    message_page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert f'href="{confirm_url(message)}">Unsubscribe</a>' in message_page

    response = confirm(alice_client, message, "one_click")
    assert response.status_code == 302 and response["Location"] == confirm_url(message)
    request = UnsubscribeRequest.objects.get(message=message)
    assert (request.method, request.state, request.target) == ("one_click", "pending", list_server.url("/u/12"))
    assert unsubscribe_enqueued == [request.id]
    html = page(alice_client, message)
    assert "Unsubscribing…" in html and 'data-working="1"' in html
    assert list_server.requests == []  # the web request itself never fetches

    assert tasks.unsubscribe.apply(args=[request.id]).get() == "done"
    request.refresh_from_db()
    assert (request.state, request.status_code, request.attempts) == ("done", 200, 1)
    assert [r.method for r in list_server.requests] == ["POST"]
    html = page(alice_client, message)
    assert "Unsubscribed from <bdi>Weekly News</bdi>" in html and 'name="method"' not in html
    message_page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert '<span class="badge ok">Unsubscribed</span>' in message_page
    assert alice_client.get(reverse("unsubscribe:status", args=[message.id])).json() == {"kind": "done"}

    # Confirming again changes nothing: no second request, no second task.
    confirm(alice_client, message, "one_click")
    assert unsubscribe_enqueued == [request.id]
    assert UnsubscribeRequest.objects.get().state == "done"


def test_a_private_address_in_production_is_recorded_as_refused(
    alice_client, account, list_server, settings, unsubscribe_enqueued, confirm
):
    settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = False
    message = newsletter(account, f"<{list_server.url('/u/12')}>")
    confirm(alice_client, message, "one_click")
    assert actions.run(unsubscribe_enqueued[0]) == "failed"
    assert UnsubscribeRequest.objects.get().error_class == "not_allowed"
    assert "points to a private or reserved network address" in page(alice_client, message)
    assert list_server.requests == []


def test_the_senders_refusal_is_shown_and_another_try_is_possible(
    alice_client, account, list_server, unsubscribe_enqueued, confirm
):
    list_server.routes["/u/12"] = (404, {})
    message = newsletter(account, f"<{list_server.url('/u/12')}>")
    confirm(alice_client, message, "one_click")
    actions.run(unsubscribe_enqueued[0])
    html = page(alice_client, message)
    assert "The sender&#x27;s server refused: HTTP 404 Not Found" in html
    assert 'name="method" value="one_click"' in html  # the reader may try again
    message_page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert "Unsubscribing did not work" in message_page

    list_server.routes["/u/12"] = (200, {})
    confirm(alice_client, message, "one_click")
    assert unsubscribe_enqueued == [unsubscribe_enqueued[0]] * 2  # the same row, set going again
    assert actions.run(unsubscribe_enqueued[0]) == "done"


def test_without_one_click_the_server_never_fetches_and_the_reader_gets_the_link(
    alice_client, account, list_server, unsubscribe_enqueued, confirm
):
    url = list_server.url("/u/12?t=a&b=1")
    message = newsletter(account, f"<{url}>", post="")
    html = page(alice_client, message)
    assert "webpop does not open it for you" in html
    assert f'href="{url.replace("&", "&amp;")}" target="_blank" rel="noopener noreferrer"' in html
    assert 'name="method"' not in html
    response = confirm(alice_client, message, "one_click")
    assert response.status_code == 400
    assert "does not offer one-click unsubscribe" in response.content.decode()
    assert not UnsubscribeRequest.objects.exists()
    assert unsubscribe_enqueued == []
    assert list_server.requests == []


def test_temporary_failures_wait_on_the_row_and_the_sweep_tries_again(
    alice_client, account, list_server, unsubscribe_enqueued, confirm
):
    list_server.routes["/u/12"] = (503, {})
    message = newsletter(account, f"<{list_server.url('/u/12')}>")
    confirm(alice_client, message, "one_click")
    request_id = unsubscribe_enqueued[0]
    assert actions.run(request_id) == "pending"
    request = UnsubscribeRequest.objects.get(id=request_id)
    assert request.not_before > timezone.now() and request.error == "HTTP 503 Service Unavailable"
    assert "tries again at" in page(alice_client, message)
    assert actions.run(request_id) == "skipped"  # not due yet
    assert actions.due() == []

    later = request.not_before + dt.timedelta(seconds=1)
    assert actions.due(now=later) == [request_id]
    assert actions.due(now=later) == []  # published once per try
    UnsubscribeRequest.objects.filter(id=request_id).update(not_before=timezone.now())
    list_server.routes["/u/12"] = (200, {})
    assert actions.run(request_id) == "done"
    assert UnsubscribeRequest.objects.get(id=request_id).attempts == 2


def test_the_last_temporary_failure_ends_the_request(alice_client, account, list_server, unsubscribe_enqueued, confirm):
    list_server.routes["/u/12"] = (503, {})
    message = newsletter(account, f"<{list_server.url('/u/12')}>")
    confirm(alice_client, message, "one_click")
    request_id = unsubscribe_enqueued[0]
    for expected in ("pending", "pending", "failed"):
        UnsubscribeRequest.objects.filter(id=request_id).update(not_before=timezone.now())
        assert actions.run(request_id) == expected
    assert len(list_server.requests) == actions.MAX_ATTEMPTS
    assert "could not be reached: HTTP 503 Service Unavailable" in page(alice_client, message)


def test_lost_tasks_and_dead_workers_are_found_again_from_the_rows(alice, account, list_server):
    lost = newsletter(account, f"<{list_server.url('/u/12')}>", uidl="lost")
    died = newsletter(account, f"<{list_server.url('/u/12')}>", uidl="died")
    gone = newsletter(account, f"<{list_server.url('/u/12')}>", uidl="gone")
    for message in (lost, died, gone):
        actions.start(alice, message.id, "one_click")
    now = timezone.now()
    long_ago = now - actions.CLAIM_LEASE - dt.timedelta(minutes=1)
    UnsubscribeRequest.objects.filter(message=lost).update(enqueued_at=now - actions.REDISPATCH_AFTER * 2)
    UnsubscribeRequest.objects.filter(message=died).update(state="running", claimed_at=long_ago, attempts=1)
    UnsubscribeRequest.objects.filter(message=gone).update(state="running", claimed_at=long_ago, attempts=3)

    ids = actions.due(now=now)
    by_message = {r.message_id: r for r in UnsubscribeRequest.objects.all()}
    assert sorted(ids) == sorted([by_message[lost.id].id, by_message[died.id].id])
    assert by_message[gone.id].state == "failed" and by_message[gone.id].error_class == "stopped"
    for request_id in ids:
        assert actions.run(request_id) == "done"
    assert len(list_server.requests) == 2


def test_beat_runs_the_sweep_every_tick(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["resume-unsubscribes"]
    assert entry["task"] == "unsubscribe.tasks.resume_unsubscribes"
    assert entry["schedule"] == settings.CELERY_BEAT_SCHEDULE["dispatch-due-sends"]["schedule"]


def test_confirmations_are_limited_per_user(
    alice_client, account, list_server, settings, steady_clock, confirm, unsubscribe_enqueued
):
    settings.WEBPOP_RATELIMIT_UNSUBSCRIBE = 2
    messages = [newsletter(account, f"<{list_server.url('/u/12')}>", uidl=f"n-{n}") for n in range(3)]
    assert [confirm(alice_client, m, "one_click").status_code for m in messages[:2]] == [302, 302]
    response = confirm(alice_client, messages[2], "one_click")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "Too many unsubscribe requests" in response.content.decode()
    assert not UnsubscribeRequest.objects.filter(message=messages[2]).exists()
    assert len(unsubscribe_enqueued) == 2


# --- By e-mail ----------------------------------------------------------------------------------


def test_mailto_is_sent_through_the_accounts_smtp_server_and_filed_in_sent(
    alice_client, smtp_account, smtp_server, send_enqueued, unsubscribe_enqueued, confirm
):
    account = smtp_account()
    message = newsletter(account, "<mailto:leave@weekly.example?subject=leave%2012&body=Remove%20me>", post="")
    html = page(alice_client, message)
    assert 'name="method" value="mailto"' in html and "leave@weekly.example" in html
    assert confirm(alice_client, message, "mailto").status_code == 302
    request = UnsubscribeRequest.objects.select_related("outgoing").get()
    assert (request.method, request.state, request.target) == ("mailto", "mailed", "leave@weekly.example")
    assert send_enqueued == [request.outgoing_id] and unsubscribe_enqueued == []
    assert "Sending the unsubscribe e-mail to leave@weekly.example" in page(alice_client, message)

    assert send.deliver(request.outgoing_id) is send.Outcome.SENT
    [got] = smtp_server.received
    assert got.rcpt_tos == ["leave@weekly.example"]
    sent = email.message_from_bytes(got.data, policy=email.policy.default)
    assert sent["Subject"] == "leave 12"
    assert sent.get_body(("plain",)).get_content().strip() == "Remove me"
    assert Message.objects.get(folder=Folder.SENT).subject == "leave 12"
    html = page(alice_client, message)
    assert "Unsubscribed from <bdi>Weekly News</bdi>" in html
    assert "The unsubscribe e-mail to leave@weekly.example was sent." in html
    message_page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert '<span class="badge ok">Unsubscribed</span>' in message_page


def test_a_refused_unsubscribe_email_waits_in_the_outbox(alice_client, smtp_account, smtp_server, confirm):
    account = smtp_account()
    message = newsletter(account, "<mailto:leave@weekly.example>", post="")
    confirm(alice_client, message, "mailto")
    smtp_server.refuse_recipient("leave@weekly.example", 550, "5.1.1 No such list")
    assert send.deliver(UnsubscribeRequest.objects.get().outgoing_id) is send.Outcome.FAILED
    html = page(alice_client, message)
    assert "The unsubscribe e-mail could not be sent" in html and "No such list" in html
    assert reverse("outgoing:outbox") in html
    assert 'name="method" value="mailto"' in html  # and it can be asked again


def test_without_sending_settings_the_page_says_so_and_offers_the_compose_page(
    alice, alice_client, smtp_account, send_enqueued, confirm
):
    receiving = make_account(alice, username="lists@example.org")  # no sending settings
    sending = smtp_account()
    message = newsletter(receiving, "<mailto:leave@weekly.example?subject=leave&body=bye>", post="")
    html = page(alice_client, message)
    assert "Sending is not set up for" in html and 'name="method"' not in html
    assert reverse("outgoing:settings", args=[receiving.id]) in html
    compose = f"/compose/?account={sending.id}&amp;to=leave%40weekly.example&amp;subject=leave&amp;body=bye"
    assert compose in html
    form = alice_client.get(compose.replace("&amp;", "&")).context["form"]
    assert (form.initial["to"], form.initial["subject"], form.initial["body"]) == (
        "leave@weekly.example", "leave", "bye",
    )  # fmt: skip

    response = confirm(alice_client, message, "mailto")
    assert response.status_code == 400 and "Sending is not set up for" in response.content.decode()
    assert not OutgoingMessage.objects.exists() and not UnsubscribeRequest.objects.exists()
    assert send_enqueued == []


# --- Whose it is ---------------------------------------------------------------------------------


def test_nobody_else_sees_or_unsubscribes(bob, bob_client, account, list_server, unsubscribe_enqueued):
    message = newsletter(account, f"<{list_server.url('/u/12')}>, <mailto:leave@weekly.example>")
    assert bob_client.get(confirm_url(message)).status_code == 404
    assert bob_client.post(confirm_url(message), {"method": "one_click"}).status_code == 404
    assert bob_client.post(confirm_url(message), {"method": "mailto"}).status_code == 404
    assert bob_client.get(reverse("unsubscribe:status", args=[message.id])).status_code == 404
    with pytest.raises(Message.DoesNotExist):
        actions.start(bob, message.id, "mailto")
    assert not UnsubscribeRequest.objects.exists() and unsubscribe_enqueued == []


def test_a_message_that_offers_nothing_has_no_unsubscribe(alice_client, account):
    message = newsletter(account, "<http://weekly.example/u/12>", post="")  # clear-text http only: not offered
    assert alice_client.get(confirm_url(message)).status_code == 404
    html = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert "unsubscribe-control" not in html


def test_an_outgoing_message_queued_by_mailto_is_the_users_own(alice, smtp_account):
    message = newsletter(smtp_account(), "<mailto:leave@weekly.example>", post="")
    request = actions.start(alice, message.id, "mailto")
    assert request.outgoing.owner_id == alice.id and request.outgoing.account_id == message.account_id
    assert request.outgoing.state == OutgoingState.QUEUED


# --- Messages stored before the list fields were read -------------------------------------------


def test_messages_stored_before_are_read_from_their_headers_once(alice_client, account, django_assert_num_queries):
    message = newsletter(account, "<mailto:leave@weekly.example?subject=leave>, <https://weekly.example/u/12>")
    Message.objects.filter(id=message.id).update(list_unsubscribe=None)  # as the migration leaves older rows
    message.refresh_from_db()
    offered = actions.offer(message)
    assert (offered.https, offered.one_click, offered.mailto.address, offered.list_name) == (
        "https://weekly.example/u/12", True, "leave@weekly.example", "Weekly News",
    )  # fmt: skip
    message.refresh_from_db()
    assert message.list_unsubscribe["https"] == "https://weekly.example/u/12"
    with django_assert_num_queries(0):
        assert actions.offer(message) == offered
    Message.objects.filter(id=message.id).update(list_unsubscribe=None)
    assert "Unsubscribe from <bdi>Weekly News</bdi>?" in page(alice_client, message)  # the page reads them too


def test_a_missing_stored_file_is_not_remembered_as_no_offer(account):
    message = newsletter(account, "<https://weekly.example/u/12>")
    Message.objects.filter(id=message.id).update(list_unsubscribe=None, raw_path="raw/00/missing")
    message.refresh_from_db()
    assert not actions.offer(message)
    message.refresh_from_db()
    assert message.list_unsubscribe is None  # read again once the file is back


# --- Through a real worker ------------------------------------------------------------------------


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_one_click_through_the_web_and_a_real_celery_worker(alice_client, account, list_server, celery_worker):
    message = newsletter(account, f"<{list_server.url('/u/12')}>")
    assert alice_client.post(confirm_url(message), {"method": "one_click"}).status_code == 302
    wait_for(lambda: UnsubscribeRequest.objects.get(message=message).state == "done")
    assert [(r.method, r.path, r.body) for r in list_server.requests] == [
        ("POST", "/u/12", b"List-Unsubscribe=One-Click")
    ]
