"""Editing, pausing and removing accounts."""

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import MailAccount
from mailbox.models import Message
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


def edit_data(account, **overrides):
    data = {
        "label": account.label, "host": account.host, "security": account.security, "port": account.port,
        "username": account.username, "password": "", "policy": "keep", "days": "", "poll_interval": "300",
        "auth_mechanism": "", "tls_fingerprint": "", "max_message_mb": "", "action": "save", "save_anyway": "on",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_edit_keeps_the_password_when_left_empty(alice_client, alice, settings):
    settings.WEBPOP_DNS_NAMESERVERS = ["127.0.0.1:9"]
    account = make_account(alice, host="no-such-host.invalid", password="old-secret")
    response = alice_client.post(
        reverse("accounts:edit", args=[account.id]), edit_data(account, label="Work", policy="mirror", days="30")
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.label, account.policy, account.get_password()) == ("Work", "mirror+days:30", "old-secret")


def test_new_password_or_server_resets_the_error_and_polls_now(alice_client, alice):
    account = make_account(alice, host="no-such-host.invalid")
    MailAccount.objects.filter(id=account.id).update(
        last_error_class="auth", consecutive_failures=4, next_poll_at=timezone.now() + timezone.timedelta(days=1)
    )
    alice_client.post(reverse("accounts:edit", args=[account.id]), edit_data(account, password="new-secret"))
    account.refresh_from_db()
    assert account.get_password() == "new-secret"
    assert (account.last_error_class, account.consecutive_failures) == ("", 0)
    assert account.next_poll_at <= timezone.now()


def test_fingerprint_and_size_limit_are_validated_and_saved(alice_client, alice):
    account = make_account(alice, host="no-such-host.invalid")
    bad = alice_client.post(reverse("accounts:edit", args=[account.id]), edit_data(account, tls_fingerprint="abc"))
    assert "64 hex digits" in bad.content.decode()
    alice_client.post(
        reverse("accounts:edit", args=[account.id]),
        edit_data(account, tls_fingerprint="AB:" * 31 + "AB", max_message_mb="5", auth_mechanism="CRAM-MD5"),
    )
    account.refresh_from_db()
    assert account.tls_fingerprint == "ab" * 32
    assert account.max_message_bytes == 5 * 1024 * 1024
    assert account.auth_mechanism == "CRAM-MD5"


def test_pause_and_resume(alice_client, alice):
    account = make_account(alice)
    alice_client.post(reverse("accounts:toggle", args=[account.id]))
    account.refresh_from_db()
    assert not account.enabled
    alice_client.post(reverse("accounts:toggle", args=[account.id]))
    account.refresh_from_db()
    assert account.enabled


def test_remove_asks_first_then_removes_account_and_its_mail(alice_client, alice):
    account = make_account(alice)
    store_message(account, build_message("bye"), "1")
    page = alice_client.get(reverse("accounts:delete", args=[account.id]))
    assert "Nothing is deleted on the server" in page.content.decode()
    assert MailAccount.objects.filter(id=account.id).exists()
    alice_client.post(reverse("accounts:delete", args=[account.id]))
    assert not MailAccount.objects.filter(id=account.id).exists()
    assert not Message.objects.exists()


def test_bob_cannot_edit_pause_or_remove_alices_account(bob_client, alice):
    account = make_account(alice)
    assert bob_client.get(reverse("accounts:edit", args=[account.id])).status_code == 404
    assert bob_client.post(reverse("accounts:edit", args=[account.id]), edit_data(account)).status_code == 404
    assert bob_client.post(reverse("accounts:toggle", args=[account.id])).status_code == 404
    assert bob_client.get(reverse("accounts:delete", args=[account.id])).status_code == 404
    assert bob_client.post(reverse("accounts:delete", args=[account.id])).status_code == 404
    account.refresh_from_db()
    assert account.enabled
