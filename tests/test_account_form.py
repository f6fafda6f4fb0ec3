"""Adding an account: test connection reports specific errors; saving stores it encrypted."""

import socket

import pytest
from django.urls import reverse

from accounts.models import MailAccount

pytestmark = [pytest.mark.django_db, pytest.mark.dovecot]


def form_data(pop_user, dovecot, **overrides):
    data = {
        "label": "Home",
        "host": "localhost",
        "security": "ssl",
        "port": dovecot.pop3s_port,
        "username": pop_user.name,
        "password": pop_user.password,
        "policy": "keep",
        "days": "",
        "poll_interval": "300",
        "action": "test",
    }
    data.update(overrides)
    return data


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_test_connection_success_reports_the_message_count(alice_client, pop_user, dovecot):
    pop_user.deliver(b"Subject: x\r\n\r\nbody\r\n")
    response = alice_client.post(reverse("accounts:add"), form_data(pop_user, dovecot))
    assert response.status_code == 200
    assert "Connected and logged in: 1 message on the server." in response.content.decode()
    assert MailAccount.objects.count() == 0  # testing never saves


@pytest.mark.parametrize(
    ("overrides", "error_class", "text"),
    [
        ({"password": "wrong"}, "auth", "rejected the user name or password"),
        ({"port": "closed"}, "refused", "was refused"),
        ({"host": "no-such-host.invalid"}, "dns", "could not be resolved"),
        ({"ca": "none"}, "tls", "could not be verified"),
        ({"private": "deny"}, "private_address", "private, loopback or reserved address"),
    ],
)
def test_test_connection_failures_are_specific(alice_client, pop_user, dovecot, settings, overrides, error_class, text):
    if overrides.pop("port", None):
        overrides["port"] = closed_port()
    if overrides.pop("ca", None):
        settings.WEBPOP_POP3_CA_FILE = None
    if overrides.pop("private", None):
        settings.WEBPOP_POP3_ALLOW_PRIVATE = False
    response = alice_client.post(reverse("accounts:add"), form_data(pop_user, dovecot, **overrides, action="save"))
    assert response.status_code == 422
    html = response.content.decode()
    assert f'data-error-class="{error_class}"' in html
    assert text in html
    assert MailAccount.objects.count() == 0


def test_save_creates_the_account_and_starts_a_sync(
    alice_client, alice, pop_user, dovecot, enqueued, django_capture_on_commit_callbacks
):
    data = form_data(pop_user, dovecot, action="save", policy="mirror")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("accounts:add"), data)
    account = MailAccount.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:detail", args=[account.id])
    assert (account.owner, account.policy, account.port) == (alice, "mirror", dovecot.pop3s_port)
    assert account.get_password() == pop_user.password
    assert pop_user.password not in account.password_encrypted
    assert enqueued == [account.id]


def test_save_anyway_keeps_an_account_whose_test_failed(alice_client, pop_user, dovecot):
    data = form_data(pop_user, dovecot, action="save", password="wrong", save_anyway="on")
    assert alice_client.post(reverse("accounts:add"), data).status_code == 302
    assert MailAccount.objects.count() == 1


@pytest.mark.parametrize(
    ("policy", "days", "stored"),
    [("keep", "30", "days:30"), ("mirror", "7", "mirror+days:7"), ("mirror", "", "mirror")],
)
def test_days_combine_with_keep_and_mirror(alice_client, pop_user, dovecot, policy, days, stored):
    data = form_data(pop_user, dovecot, action="save", policy=policy, days=days)
    assert alice_client.post(reverse("accounts:add"), data).status_code == 302
    assert MailAccount.objects.get().policy == stored


def test_days_do_not_combine_with_move(alice_client, pop_user, dovecot):
    response = alice_client.post(reverse("accounts:add"), form_data(pop_user, dovecot, policy="delete", days="5"))
    assert "Move already deletes" in response.content.decode()


@pytest.mark.parametrize(("security", "port"), [("ssl", 995), ("starttls", 110), ("none", 110)])
def test_default_port_follows_security(alice_client, pop_user, dovecot, security, port):
    data = form_data(pop_user, dovecot, action="save", port="", security=security, save_anyway="on")
    assert alice_client.post(reverse("accounts:add"), data).status_code == 302
    assert MailAccount.objects.get().port == port


@pytest.mark.parametrize(("slowest", "stored"), [("3600", 3600), ("", None)])
def test_the_owner_chooses_how_far_a_quiet_account_slows_down(alice_client, pop_user, dovecot, slowest, stored):
    data = form_data(pop_user, dovecot, action="save", poll_interval_max=slowest)
    assert alice_client.post(reverse("accounts:add"), data).status_code == 302
    assert MailAccount.objects.get().poll_interval_max == stored


def test_the_slowest_rate_must_be_slower_than_the_chosen_one(alice_client, pop_user, dovecot):
    data = form_data(pop_user, dovecot, action="save", poll_interval="3600", poll_interval_max="1800")
    response = alice_client.post(reverse("accounts:add"), data)
    assert "Choose a longer time than how often mail is checked" in response.content.decode()
    assert not MailAccount.objects.exists()


def test_changing_the_rate_starts_again_from_the_chosen_one(alice_client, pop_user, dovecot):
    assert alice_client.post(reverse("accounts:add"), form_data(pop_user, dovecot, action="save")).status_code == 302
    account = MailAccount.objects.get()
    MailAccount.objects.filter(id=account.id).update(current_interval=1200, poll_interval_max=1800)
    data = form_data(pop_user, dovecot, action="save", poll_interval="900", poll_interval_max="3600", password="")
    assert alice_client.post(reverse("accounts:edit", args=[account.id]), data).status_code == 302
    account.refresh_from_db()
    assert (account.poll_interval, account.poll_interval_max, account.current_interval) == (900, 3600, None)
