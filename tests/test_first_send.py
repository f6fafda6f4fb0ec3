"""The first message from an account that cannot send yet: its sending settings inside the editor.

Against the real SMTP test server (aiosmtpd): the setup is prefilled from the account, Test logs in without
sending, Send saves the settings and queues the message as any other, and what was typed (addresses, subject,
text, files) survives every outcome. OAuth2 accounts whose grant covers sending get their settings unasked.
"""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts import autoconfig
from oauth.models import Grant
from outgoing import actions, send
from outgoing.models import Identity, OutgoingMessage, OutgoingState, SmtpAuth, SmtpSettings
from tests.dnsserver import DnsServer
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

POP_PASSWORD = "pop-secret-ü"


@pytest.fixture
def account(alice):
    """A new account of alice's at a provider no preset knows, with no sending settings."""
    return make_account(alice, host="pop.example.org", username="alice@example.org", password=POP_PASSWORD)


@pytest.fixture
def login_works(smtp_server, account):
    """The SMTP test server takes the account's POP3 login, as most providers do."""
    smtp_server.add_user(account.username, POP_PASSWORD)
    return smtp_server


def typed(account, **overrides) -> dict:
    """The editor as a person filled it in: the message, and the setup pointed at the SMTP test server."""
    data = {
        "account": account.id,
        "to": "Bob <bob@example.net>",
        "cc": "",
        "bcc": "",
        "subject": "Our first message",
        "body": "Hello Bob,\n\nthe text typed before the setup.\n",
        "smtp-from_name": "Alice Example",
        "smtp-from_email": "alice@example.org",
        "smtp-host": "localhost",
        "smtp-port": "",
        "smtp-security": "starttls",
        "smtp-auth": "same",
        "smtp-username": "",
        "smtp-password": "",
    }
    data.update(overrides)
    return data


def page_of(response) -> str:
    return response.content.decode()


def assert_text_kept(page: str) -> None:
    assert 'value="Bob &lt;bob@example.net&gt;"' in page
    assert 'value="Our first message"' in page
    assert "the text typed before the setup." in page


# --- The setup in the editor -------------------------------------------------------------


def test_without_any_account_compose_asks_to_add_one(alice, alice_client):
    response = alice_client.get(reverse("outgoing:compose"))
    assert response.status_code == 302 and response["Location"] == reverse("outgoing:accounts")


def test_first_compose_shows_the_setup_inline_prefilled_from_the_account(alice, alice_client, account):
    response = alice_client.get(reverse("outgoing:compose"))
    page = page_of(response)
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    assert 'id="send-setup"' in page and 'id="compose-form"' in page and 'name="body"' in page
    assert 'name="identity"' not in page  # From is the setup's address
    assert f'name="account" value="{account.id}"' in page
    # Guessed from the POP3 server's name (pop.example.org), submission with STARTTLS, the POP3 login.
    assert 'name="smtp-host" value="smtp.example.org"' in page
    assert 'name="smtp-port" value="587"' in page
    assert re.search(r'<option value="starttls" selected>', page)
    assert re.search(r'name="smtp-auth" value="same"[^>]*checked', page)
    assert 'name="smtp-from_email" value="alice@example.org"' in page
    assert "guess" in page
    assert f'data-suggest-url="{reverse("outgoing:smtp_suggest", args=[account.id])}"' in page
    assert not SmtpSettings.objects.exists()


def test_a_known_provider_fills_in_its_server_and_asks_nobody(alice, alice_client):
    account = make_account(alice, host="pop.gmail.com", username="alice@gmail.com")
    page = page_of(alice_client.get(reverse("outgoing:compose") + f"?account={account.id}"))
    assert 'name="smtp-host" value="smtp.gmail.com"' in page and 'name="smtp-port" value="465"' in page
    assert '<option value="ssl" selected>' in page
    assert "The server of Gmail is filled in." in page
    assert "data-suggest-url" not in page


def test_an_account_that_can_send_opens_the_usual_editor(alice, alice_client, smtp_account, account):
    ready = smtp_account(make_account(alice, username="alice-two"))
    page = page_of(alice_client.get(reverse("outgoing:compose")))
    assert 'id="send-setup"' not in page and 'name="identity"' in page
    # Asking for the other account by name opens its setup, with a way back to the one that sends.
    page = page_of(alice_client.get(reverse("outgoing:compose") + f"?account={account.id}"))
    assert 'id="send-setup"' in page and "Send from another account:" in page
    assert f'href="{reverse("outgoing:compose")}?account={ready.id}"' in page


def test_reply_from_an_account_without_settings_sets_it_up_in_the_reply(alice, alice_client, account):
    message = store_message(account, build_message("Lunch?", "Tomorrow at one?", sender="Bob <bob@example.net>"), "u1")
    response = alice_client.post(reverse("outgoing:reply", args=[message.id]), {"kind": "reply"})
    draft = OutgoingMessage.objects.get(owner=alice)
    assert response["Location"] == reverse("outgoing:edit", args=[draft.id])
    page = page_of(alice_client.get(response["Location"]))
    assert 'id="send-setup"' in page and 'value="Re: Lunch?"' in page and "bob@example.net" in page


# --- Test in place -------------------------------------------------------------------------


def test_test_logs_in_without_sending_and_keeps_everything_typed(alice, alice_client, account, login_works):
    server = login_works
    upload = SimpleUploadedFile("plan.txt", b"the plan\n", content_type="text/plain")
    data = typed(account, **{"smtp-port": server.starttls_port, "action": "test", "attachments": [upload]})
    response = alice_client.post(reverse("outgoing:compose"), data)
    page = page_of(response)
    assert response.status_code == 200
    assert f"Sending as alice@example.org through localhost:{server.starttls_port} — works." in page
    assert server.logins == [("PLAIN", "alice@example.org")] and server.received == []
    assert not SmtpSettings.objects.exists()  # a test saves no settings
    assert_text_kept(page)
    # The draft holds the text and the file, so nothing is lost whatever comes next.
    draft = OutgoingMessage.objects.get(owner=alice)
    assert draft.state == OutgoingState.DRAFT and draft.subject == "Our first message"
    assert [a.filename for a in draft.attachments.all()] == ["plan.txt"]
    assert "plan.txt" in page and f'action="{reverse("outgoing:edit", args=[draft.id])}"' in page
    assert 'name="smtp-host" value="localhost"' in page  # the setup as typed, not as guessed


def test_a_failed_test_says_why_and_keeps_everything_typed(alice, alice_client, account, smtp_server):
    smtp_server.add_user("alice-out", "right")
    upload = SimpleUploadedFile("plan.txt", b"the plan\n", content_type="text/plain")
    data = typed(
        account,
        **{"smtp-port": smtp_server.starttls_port, "smtp-auth": "separate", "smtp-username": "alice-out"},
        **{"smtp-password": "wrong", "action": "test", "attachments": [upload]},
    )
    response = alice_client.post(reverse("outgoing:compose"), data)
    page = page_of(response)
    assert response.status_code == 400
    assert f"Sending as alice@example.org through localhost:{smtp_server.starttls_port} does not work:" in page
    assert "535" in page and 'data-error-class="auth"' in page
    assert_text_kept(page)
    assert 'name="smtp-username" value="alice-out"' in page
    assert [a.filename for a in OutgoingMessage.objects.get(owner=alice).attachments.all()] == ["plan.txt"]
    assert not SmtpSettings.objects.exists() and smtp_server.received == []


def test_test_by_script_answers_json_and_names_the_saved_draft(alice, alice_client, account, login_works):
    data = typed(account, **{"smtp-port": login_works.starttls_port, "action": "test"})
    answer = alice_client.post(reverse("outgoing:compose"), data, headers={"X-Requested-With": "fetch"}).json()
    draft = OutgoingMessage.objects.get(owner=alice)
    assert answer["ok"] is True and answer["url"] == reverse("outgoing:edit", args=[draft.id])
    assert answer["headline"] == f"Sending as alice@example.org through localhost:{login_works.starttls_port} — works."
    assert "logged in with PLAIN" in answer["detail"] and answer["invalid"] is False
    # A failed test is an answer like any other; a field to fix is the page's to show.
    failed = alice_client.post(answer["url"], {**data, "smtp-auth": "separate", "smtp-username": "x",
                               "smtp-password": "y"}, headers={"X-Requested-With": "fetch"})  # fmt: skip
    assert failed.status_code == 200 and failed.json()["ok"] is False and "535" in failed.json()["detail"]
    refused = alice_client.post(answer["url"], {**data, "smtp-port": "0"}, headers={"X-Requested-With": "fetch"})
    assert refused.status_code == 400 and refused.json()["invalid"] is True  # the page posts itself to show why
    assert OutgoingMessage.objects.count() == 1


def test_the_test_is_rate_limited(alice, alice_client, account, login_works, settings):
    settings.WEBPOP_RATELIMIT_TEST_CONNECTION = 1
    data = typed(account, **{"smtp-port": login_works.starttls_port, "action": "test"})
    assert alice_client.post(reverse("outgoing:compose"), data).status_code == 200
    page = page_of(alice_client.post(reverse("outgoing:compose"), data))
    assert "Too many connection tests" in page
    assert_text_kept(page)
    assert len(login_works.logins) == 1


def test_test_works_in_german(alice, alice_client, account, login_works):
    data = typed(account, **{"smtp-port": login_works.starttls_port, "action": "test"})
    page = page_of(alice_client.post(reverse("outgoing:compose"), data, HTTP_ACCEPT_LANGUAGE="de"))
    assert f"Senden als alice@example.org über localhost:{login_works.starttls_port} — funktioniert." in page


# --- Send with the setup -------------------------------------------------------------------


def test_send_saves_the_settings_and_queues_the_message(
    alice, alice_client, account, login_works, send_enqueued, django_capture_on_commit_callbacks
):
    data = typed(account, **{"smtp-port": login_works.starttls_port, "action": "send"})
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("outgoing:compose"), data)
    assert response.status_code == 302 and response["Location"] == reverse("mailbox:folder", args=["sent"])
    smtp = SmtpSettings.objects.get(account=account)
    assert (smtp.host, smtp.port, smtp.security) == ("localhost", login_works.starttls_port, "starttls")
    assert smtp.auth == "same" and smtp.password_encrypted == ""  # the POP3 login
    assert (smtp.from_name, smtp.from_email) == ("Alice Example", "alice@example.org")
    assert Identity.objects.get(account=account, is_default=True).address == "alice@example.org"
    outgoing = OutgoingMessage.objects.get(owner=alice)
    assert outgoing.state == OutgoingState.QUEUED and outgoing.next_attempt_at is not None  # the Undo window
    assert send_enqueued == [outgoing.id]
    banner = page_of(alice_client.get(response["Location"]))
    assert "Sending settings saved." in banner and "undo-send" in banner
    # The worker's part, once the window is over: it arrives at the server as the account's own.
    OutgoingMessage.objects.filter(id=outgoing.id).update(next_attempt_at=outgoing.queued_at)
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    [received] = login_works.received
    assert received.login == "alice@example.org" and received.rcpt_tos == ["bob@example.net"]
    assert b"From: Alice Example <alice@example.org>" in received.data
    assert b"the text typed before the setup." in received.data
    # From now on the editor is the usual one.
    assert 'id="send-setup"' not in page_of(alice_client.get(reverse("outgoing:compose")))


def test_send_with_settings_that_do_not_work_saves_none_and_keeps_the_message(
    alice, alice_client, account, smtp_server, send_enqueued
):
    data = typed(account, **{"smtp-port": smtp_server.starttls_port, "action": "send"})  # the server lacks this user
    response = alice_client.post(reverse("outgoing:compose"), data)
    page = page_of(response)
    assert response.status_code == 400 and "does not work" in page and "535" in page
    assert_text_kept(page)
    assert not SmtpSettings.objects.exists() and send_enqueued == []
    assert OutgoingMessage.objects.get(owner=alice).state == OutgoingState.DRAFT
    assert smtp_server.received == []


def test_send_with_a_bad_setup_field_shows_it_and_keeps_the_message(alice, alice_client, account, smtp_server):
    upload = SimpleUploadedFile("plan.txt", b"the plan\n", content_type="text/plain")
    data = typed(account, **{"smtp-host": "smtp.example.org:25", "action": "send", "attachments": [upload]})
    response = alice_client.post(reverse("outgoing:compose"), data)
    page = page_of(response)
    assert response.status_code == 400 and "without a port or scheme" in page
    assert_text_kept(page)
    draft = OutgoingMessage.objects.get(owner=alice)
    assert draft.state == OutgoingState.DRAFT and [a.filename for a in draft.attachments.all()] == ["plan.txt"]
    assert not SmtpSettings.objects.exists() and smtp_server.sessions == []  # nothing was tried


def test_send_with_a_bad_recipient_connects_nowhere_and_saves_nothing(alice, alice_client, account, login_works):
    data = typed(account, to="not an address", **{"smtp-port": login_works.starttls_port, "action": "send"})
    response = alice_client.post(reverse("outgoing:compose"), data)
    assert response.status_code == 400 and 'value="not an address"' in page_of(response)
    assert not SmtpSettings.objects.exists() and login_works.sessions == []


def test_saving_a_draft_in_the_setup_keeps_the_message_and_sets_nothing_up(alice, alice_client, account):
    make_account(alice, username="alice-two")  # a new message could start from it; a draft stays where it is
    assert "Send from another account" in page_of(alice_client.get(reverse("outgoing:compose")))
    answer = alice_client.post(reverse("outgoing:compose"), typed(account, action="autosave")).json()
    draft = OutgoingMessage.objects.get(owner=alice)
    assert answer == {"id": draft.id, "url": reverse("outgoing:edit", args=[draft.id])}
    response = alice_client.post(answer["url"], typed(account, subject="Saved by hand", action="save"))
    assert response["Location"] == reverse("outgoing:edit", args=[draft.id])
    page = page_of(alice_client.get(response["Location"]))
    assert 'id="send-setup"' in page and 'value="Saved by hand"' in page
    assert "Send from another account" not in page  # a draft stays with its account
    assert not SmtpSettings.objects.exists() and OutgoingMessage.objects.count() == 1


def test_nobody_sets_up_or_sends_from_anothers_account(alice, bob, bob_client, account, login_works):
    data = typed(account, **{"smtp-port": login_works.starttls_port, "action": "send"})
    response = bob_client.post(reverse("outgoing:compose"), data)
    assert response.status_code in (302, 400)
    assert not SmtpSettings.objects.exists() and not OutgoingMessage.objects.exists()
    assert login_works.sessions == []


# --- What the domain publishes (asked by the page's script) ---------------------------------


AUTOCONFIG = b"""<?xml version="1.0"?>
<clientConfig version="1.1"><emailProvider id="example.test">
  <outgoingServer type="smtp"><hostname>out.example.test</hostname><port>465</port>
    <socketType>SSL</socketType><username>%EMAILADDRESS%</username></outgoingServer>
  <outgoingServer type="smtp"><hostname>plain.example.test</hostname><port>25</port>
    <socketType>plain</socketType></outgoingServer>
  <incomingServer type="pop3"><hostname>pop.example.test</hostname><port>995</port>
    <socketType>SSL</socketType></incomingServer>
</emailProvider></clientConfig>"""


def test_autoconfig_names_the_smtp_server_and_never_clear_text():
    found = autoconfig.parse_autoconfig(AUTOCONFIG, "jane@example.test", "smtp")
    assert [(s.host, s.port, s.security) for s in found] == [("out.example.test", 465, "ssl")]
    assert [s.host for s in autoconfig.parse_autoconfig(AUTOCONFIG, "jane@example.test")] == ["pop.example.test"]


def test_suggest_asks_the_domains_srv_records_for_submission(alice, alice_client, account, settings):
    records = {
        ("_submissions._tcp.example.org", "SRV"): ["0 0 465 smtps.example.org."],
        ("_submission._tcp.example.org", "SRV"): ["0 0 587 submit.example.org."],
    }
    with DnsServer(records) as dns:
        settings.WEBPOP_DNS_NAMESERVERS = [dns.address]
        answer = alice_client.get(reverse("outgoing:smtp_suggest", args=[account.id])).json()
    assert answer["suggestions"] == [
        {"host": "smtps.example.org", "port": 465, "security": "ssl", "source": "srv", "name": "example.org"},
        {"host": "submit.example.org", "port": 587, "security": "starttls", "source": "srv", "name": "example.org"},
    ]


def test_suggest_asks_nobody_for_a_known_provider(alice, alice_client, settings):
    settings.WEBPOP_DNS_NAMESERVERS = ["127.0.0.1:9"]  # a lookup would fail loudly in the answer's time
    account = make_account(alice, host="pop.gmail.com", username="alice@gmail.com")
    assert alice_client.get(reverse("outgoing:smtp_suggest", args=[account.id])).json() == {"suggestions": []}


# --- OAuth2 accounts: no SMTP step -----------------------------------------------------------


def _oauth_account(alice, scope: str):
    account = make_account(alice, host="pop.gmail.com", username="alice@gmail.com", password="")
    grant = Grant(account=account, provider="google", email="alice@gmail.com", scope=scope)
    grant.set_refresh_token("refresh")
    grant.save()
    return account


def test_an_oauth_account_whose_grant_sends_gets_its_settings_unasked(alice, alice_client):
    account = _oauth_account(alice, "https://mail.google.com/ openid email")
    page = page_of(alice_client.get(reverse("outgoing:compose")))
    assert 'id="send-setup"' not in page and "alice@gmail.com" in page
    smtp = SmtpSettings.objects.get(account=account)
    assert (smtp.host, smtp.port, smtp.security, smtp.auth) == ("smtp.gmail.com", 465, "ssl", SmtpAuth.OAUTH2)
    assert smtp.from_email == "alice@gmail.com" and smtp.password_encrypted == ""
    assert actions.configure_oauth(account) is None  # once


def test_a_reply_to_mail_of_an_oauth_account_goes_out_from_it(alice, alice_client, smtp_account):
    smtp_account(make_account(alice, username="alice-other"))  # another account that sends
    account = _oauth_account(alice, "https://mail.google.com/ openid email")
    message = store_message(account, build_message("Hi", "Hello", to="alice@gmail.com"), "u1")
    alice_client.post(reverse("outgoing:reply", args=[message.id]), {"kind": "reply"})
    assert OutgoingMessage.objects.get(owner=alice).account_id == account.id


def test_an_oauth_grant_without_sending_gets_the_setup_with_a_way_to_reconnect(alice, alice_client):
    account = _oauth_account(alice, "openid email")
    page = page_of(alice_client.get(reverse("outgoing:compose")))
    assert 'id="send-setup"' in page and "does not cover sending" in page
    assert reverse("accounts:detail", args=[account.id]) in page
    assert re.search(r'name="smtp-auth" value="separate"[^>]*checked', page)
    assert not SmtpSettings.objects.exists()
