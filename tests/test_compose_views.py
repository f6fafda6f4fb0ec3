"""Compose, drafts, Outbox, sending settings and address suggestions through the web: forms, access, CSRF."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from outgoing import send
from outgoing.models import OutgoingAttachment, OutgoingMessage, OutgoingState, SmtpSettings
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


def compose_data(account, **overrides) -> dict:
    data = {"account": account.id, "to": "bob@example.net", "cc": "", "bcc": "", "subject": "Hi", "body": "Hello."}
    data.update(overrides)
    return data


def test_compose_without_sending_settings_sets_them_up_in_the_editor(alice, alice_client):
    account = make_account(alice)
    page = alice_client.get(reverse("outgoing:compose")).content.decode()
    assert 'id="send-setup"' in page and 'name="smtp-host"' in page  # more in tests/test_first_send.py
    # The settings page still lists it for later editing.
    page = alice_client.get(reverse("outgoing:accounts")).content.decode()
    assert "Set up sending" in page and "Not set up" in page
    assert reverse("outgoing:settings", args=[account.id]) in page


def test_settings_are_prefilled_from_the_provider_preset(alice, alice_client):
    account = make_account(alice, host="pop.gmail.com", username="alice@gmail.com")
    page = alice_client.get(reverse("outgoing:settings", args=[account.id])).content.decode()
    assert 'value="smtp.gmail.com"' in page and 'value="465"' in page
    assert '<option value="ssl" selected>' in page
    assert 'value="alice@gmail.com"' in page
    # Without the page's script: choosing a provider alone fills its settings on save.
    response = alice_client.post(
        reverse("outgoing:settings", args=[account.id]),
        {"preset": "outlook", "host": "", "security": "ssl", "auth": "same", "from_email": "alice@gmail.com"},
    )
    assert response.status_code == 302
    smtp = SmtpSettings.objects.get(account=account)
    assert (smtp.host, smtp.port, smtp.security) == ("smtp.office365.com", 587, "starttls")
    page = alice_client.get(response["Location"]).content.decode()
    assert "smtp.office365.com:587" in page and "alice@gmail.com" in page


def test_settings_save_encrypts_the_password_and_keeps_it_when_left_empty(alice, alice_client):
    account = make_account(alice)
    url = reverse("outgoing:settings", args=[account.id])
    form = {
        "host": "smtp.example.net",
        "security": "starttls",
        "port": "",
        "auth": "separate",
        "username": "alice-out",
        "password": "s3cret-out",
        "from_name": "Alice",
        "from_email": "alice@example.net",
        "signature": "Alice\n-- sent from webpop",
    }
    assert alice_client.post(url, {**form, "action": "save"}).status_code == 302
    smtp = SmtpSettings.objects.get(account=account)
    assert smtp.port == 587
    assert "s3cret-out" not in smtp.password_encrypted and smtp.get_password() == "s3cret-out"
    assert alice_client.post(url, {**form, "password": "", "action": "save"}).status_code == 302
    assert SmtpSettings.objects.get(account=account).get_password() == "s3cret-out"
    assert "s3cret-out" not in alice_client.get(url).content.decode()


def test_settings_keep_the_name_on_one_line_and_reject_bad_hosts(alice, alice_client):
    account = make_account(alice)
    url = reverse("outgoing:settings", args=[account.id])
    form = {"host": "smtp.example.net:25", "security": "ssl", "auth": "same", "from_name": "A\r\nBcc: x@example.com",
            "from_email": "alice@example.net", "action": "save"}  # fmt: skip
    response = alice_client.post(url, form)
    assert response.status_code == 400
    assert not SmtpSettings.objects.exists()
    assert "without a port" in response.content.decode()
    assert alice_client.post(url, {**form, "host": "smtp.example.net"}).status_code == 302
    # A name is one header line: line breaks (of every kind) become spaces, nothing is injected.
    assert SmtpSettings.objects.get(account=account).from_name == "A Bcc: x@example.com"
    assert (
        alice_client.post(url, {**form, "host": "smtp.example.net", "from_name": "Al\u2028ice\x0b"}).status_code == 302
    )
    assert SmtpSettings.objects.get(account=account).from_name == "Al ice"


def test_settings_test_connection_logs_in_without_sending(alice, alice_client, smtp_server):
    account = make_account(alice)
    smtp_server.add_user("alice-out", "pw-out")
    data = {
        "host": "localhost",
        "security": "starttls",
        "port": smtp_server.starttls_port,
        "auth": "separate",
        "username": "alice-out",
        "password": "pw-out",
        "from_email": "alice@example.net",
        "action": "test",
    }
    page = alice_client.post(reverse("outgoing:settings", args=[account.id]), data).content.decode()
    assert "logged in with PLAIN" in page
    assert smtp_server.logins == [("PLAIN", "alice-out")] and smtp_server.received == []
    assert not SmtpSettings.objects.exists()  # testing saves nothing
    response = alice_client.post(reverse("outgoing:settings", args=[account.id]), {**data, "password": "wrong"})
    assert response.status_code == 400
    assert "535" in response.content.decode()


def test_compose_saves_a_draft_then_sends_it(
    alice, alice_client, smtp_account, send_enqueued, django_capture_on_commit_callbacks
):
    account = smtp_account()
    response = alice_client.post(reverse("outgoing:compose"), compose_data(account, action="save"))
    outgoing = OutgoingMessage.objects.get(owner=alice)
    assert response.status_code == 302 and response["Location"] == reverse("outgoing:edit", args=[outgoing.id])
    assert outgoing.state == OutgoingState.DRAFT
    drafts = alice_client.get(reverse("outgoing:drafts")).content.decode()
    assert reverse("outgoing:edit", args=[outgoing.id]) in drafts

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("outgoing:edit", args=[outgoing.id]), compose_data(account, subject="Final", action="send")
        )
    assert response.status_code == 302 and response["Location"] == "/folder/sent/"
    outgoing.refresh_from_db()
    assert (outgoing.state, outgoing.subject) == (OutgoingState.QUEUED, "Final")
    assert send_enqueued == [outgoing.id]


def test_autosave_answers_json_with_the_draft_url(alice, alice_client, smtp_account):
    account = smtp_account()
    answer = alice_client.post(reverse("outgoing:compose"), compose_data(account, action="autosave")).json()
    outgoing = OutgoingMessage.objects.get(owner=alice)
    assert answer == {"id": outgoing.id, "url": reverse("outgoing:edit", args=[outgoing.id])}
    alice_client.post(answer["url"], compose_data(account, body="More text", action="autosave"))
    assert OutgoingMessage.objects.get(id=outgoing.id).body == "More text"
    assert OutgoingMessage.objects.count() == 1


def test_header_injection_through_the_form_is_shown_as_an_error_and_the_draft_kept(
    alice, alice_client, smtp_account, send_enqueued
):
    account = smtp_account()
    response = alice_client.post(
        reverse("outgoing:compose"),
        compose_data(account, to="bob@example.net\r\nBcc: victim@example.com", action="send"),
    )
    assert response.status_code == 400
    assert "Line breaks and control characters are not allowed" in response.content.decode()
    assert OutgoingMessage.objects.get(owner=alice).state == OutgoingState.DRAFT
    assert send_enqueued == []


def test_attachments_upload_download_and_remove(alice, alice_client, smtp_account):
    account = smtp_account()
    upload = SimpleUploadedFile("plan.txt", b"the plan\n", content_type="text/plain")
    alice_client.post(reverse("outgoing:compose"), {**compose_data(account, action="save"), "attachments": [upload]})
    outgoing = OutgoingMessage.objects.get(owner=alice)
    [attachment] = outgoing.attachments.all()
    response = alice_client.get(reverse("outgoing:attachment", args=[outgoing.id, attachment.id]))
    assert response.content == b"the plan\n"
    assert response["Content-Disposition"].startswith("attachment")
    alice_client.post(
        reverse("outgoing:edit", args=[outgoing.id]), {**compose_data(account, action="save"), "remove": attachment.id}
    )
    assert not OutgoingAttachment.objects.exists()


def test_message_page_buttons_start_a_reply_draft(alice, alice_client, smtp_account):
    account = smtp_account()
    message = store_message(account, build_message("Question", "What time?", message_id="<q@example.net>"), "u1")
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    url = reverse("outgoing:reply", args=[message.id])
    # Each message of the conversation has its own form posting to its reply URL.
    form = page.split(f'<form method="post" action="{url}" class="inline">', 1)[1].split("</form>", 1)[0]
    for kind in ("reply", "reply_all", "forward"):
        assert f'name="kind" value="{kind}"' in form
    response = alice_client.post(url, {"kind": "reply"})
    outgoing = OutgoingMessage.objects.get(owner=alice)
    assert response["Location"] == reverse("outgoing:edit", args=[outgoing.id])
    page = alice_client.get(response["Location"]).content.decode()
    assert "Re: Question" in page and "&gt; What time?" in page


def test_other_users_drafts_messages_and_accounts_are_404(alice, bob, bob_client, smtp_account):
    account = smtp_account()
    message = store_message(account, build_message("Private", "x"), "u1")
    outgoing = send.save_draft(alice, None, account=account, to="x@example.net", add=[("a.txt", "text/plain", b"a")])
    attachment = outgoing.attachments.get()
    assert bob_client.get(reverse("outgoing:edit", args=[outgoing.id])).status_code == 404
    assert bob_client.post(reverse("outgoing:edit", args=[outgoing.id]), {"action": "save"}).status_code == 404
    assert bob_client.post(reverse("outgoing:retry", args=[outgoing.id])).status_code == 404
    assert bob_client.post(reverse("outgoing:discard", args=[outgoing.id])).status_code == 404
    assert bob_client.get(reverse("outgoing:attachment", args=[outgoing.id, attachment.id])).status_code == 404
    assert bob_client.post(reverse("outgoing:reply", args=[message.id]), {"kind": "reply"}).status_code == 404
    assert bob_client.get(reverse("outgoing:settings", args=[account.id])).status_code == 404
    # Bob's own form cannot name Alice's account as the sender.
    smtp_account(make_account(bob, username="bob@example.org"))
    response = bob_client.post(reverse("outgoing:compose"), compose_data(account, action="save"))
    assert response.status_code == 400
    assert not OutgoingMessage.objects.filter(owner=bob).exists()
    assert OutgoingMessage.objects.filter(id=outgoing.id).exists()


def test_state_changes_need_post_and_csrf(alice, smtp_account):
    account = smtp_account()
    message = store_message(account, build_message("Q", "x"), "u1")
    outgoing = send.save_draft(alice, None, account=account, to="x@example.net")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(reverse("outgoing:reply", args=[message.id])).status_code == 405
    assert client.get(reverse("outgoing:discard", args=[outgoing.id])).status_code == 405
    assert client.post(reverse("outgoing:reply", args=[message.id]), {"kind": "reply"}).status_code == 403
    assert client.post(reverse("outgoing:discard", args=[outgoing.id])).status_code == 403
    assert client.post(reverse("outgoing:compose"), compose_data(account, action="send")).status_code == 403
    assert OutgoingMessage.objects.count() == 1


def test_outbox_lists_failed_messages_with_retry_edit_and_discard(alice, alice_client, smtp_account):
    account = smtp_account()
    outgoing = send.save_draft(alice, None, account=account, to="x@example.net", subject="Bounced")
    OutgoingMessage.objects.filter(id=outgoing.id).update(
        state=OutgoingState.FAILED, error="The server refused the message: 550 5.1.1 No such user"
    )
    page = alice_client.get(reverse("outgoing:outbox")).content.decode()
    assert "Bounced" in page and "550 5.1.1 No such user" in page
    for name in ("outgoing:retry", "outgoing:edit", "outgoing:discard"):
        assert reverse(name, args=[outgoing.id]) in page
    response = alice_client.post(reverse("outgoing:discard", args=[outgoing.id]))
    assert response["Location"] == reverse("outgoing:outbox")
    assert not OutgoingMessage.objects.exists()


def test_json_of_presets_is_embedded_without_inline_script(alice, alice_client):
    account = make_account(alice)
    page = alice_client.get(reverse("outgoing:settings", args=[account.id])).content.decode()
    start = page.index('<script id="smtp-presets" type="application/json">') + len(
        '<script id="smtp-presets" type="application/json">'
    )
    data = json.loads(page[start : page.index("</script>", start)])
    assert data["gmail"] == {"host": "smtp.gmail.com", "port": 465, "security": "ssl"}
    assert "<script>" not in page and "style=" not in page


def test_every_sending_page_needs_a_login(alice, client):  # alice: past the first-run setup
    for url in [
        reverse("outgoing:compose"),
        reverse("outgoing:edit", args=[1]),
        reverse("outgoing:drafts"),
        reverse("outgoing:outbox"),
        reverse("outgoing:accounts"),
        reverse("outgoing:settings", args=[1]),
        reverse("contacts:suggest") + "?q=al",
        reverse("outgoing:attachment", args=[1, 1]),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    for url in [reverse("outgoing:reply", args=[1]), reverse("outgoing:retry", args=[1])]:
        assert client.post(url)["Location"].startswith("/login/"), url


def test_the_users_sending_quota_sets_the_limit_and_the_admin_hides_secrets(
    admin_client, alice, smtp_account, settings
):
    from accounts.models import Profile

    smtp_account()
    assert send.limit_per_hour(alice.id) == settings.WEBPOP_SEND_RATE_PER_HOUR
    # The admin edits it on the user's page (tests/test_quotas.py); the limit follows it.
    Profile.objects.update_or_create(user=alice, defaults={"send_rate_per_hour": 5})
    assert send.limit_per_hour(alice.id) == 5
    smtp = SmtpSettings.objects.get()
    page = admin_client.get(f"/admin/outgoing/smtpsettings/{smtp.id}/change/").content.decode()
    assert "password_encrypted" not in page and smtp.password_encrypted not in page
    assert admin_client.get("/admin/outgoing/outgoingmessage/").status_code == 200


def test_retry_from_the_outbox_sends_at_once_without_an_undo_window(alice, alice_client, smtp_account, smtp_server):
    account = smtp_account()
    outgoing = send.save_draft(alice, None, account=account, to="x@example.net", subject="Bounced", body="Hi.")
    OutgoingMessage.objects.filter(id=outgoing.id).update(state=OutgoingState.FAILED, error="550 try later")
    assert alice_client.post(reverse("outgoing:retry", args=[outgoing.id])).status_code == 302
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    assert [got.rcpt_tos for got in smtp_server.received] == [["x@example.net"]]
