"""Password reset by e-mail, without telling anyone whether an address has an account."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from tests.conftest import require_postgresql
from users.models import AuditEvent, Session

pytestmark = pytest.mark.django_db

NEW = "a-Fresh-passw0rd-77"


def test_known_and_unknown_addresses_get_the_same_answer(alice, mailoutbox):
    known = Client().post(reverse("password_reset"), {"email": "alice@example.org"})
    unknown = Client().post(reverse("password_reset"), {"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == reverse("password_reset_done")
    assert [m.to for m in mailoutbox] == [["alice@example.org"]]


def test_the_emailed_link_sets_a_new_password_once_and_signs_out_everywhere(alice, mailoutbox):
    signed_in = Client()
    assert signed_in.post(reverse("login"), {"username": "alice", "password": "alice-Password-1"}).status_code == 302
    Client().post(reverse("password_reset"), {"email": "alice@example.org"})
    link = re.search(r"https?://testserver(\S+)", mailoutbox[0].body).group(1)

    client = Client()
    form_page = client.get(link, follow=True)  # Django swaps the token for a session marker
    assert form_page.status_code == 200 and "new_password1" in form_page.content.decode()
    form_url = form_page.redirect_chain[-1][0]
    response = client.post(form_url, {"new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_complete")

    assert Client().post(reverse("login"), {"username": "alice", "password": NEW}).status_code == 302
    assert signed_in.get(reverse("mailbox:inbox")).status_code == 302
    assert AuditEvent.objects.filter(action="password.reset", actor=alice).exists()
    # Used once: the link now says so.
    again = Client().get(link, follow=True)
    assert "does not work any more" in again.content.decode()
    assert Session.objects.filter(user=alice).count() == 1  # only the sign-in just above
    assert mailoutbox[-1].subject == "webpop: your password was reset by e-mail"


def test_mismatched_new_passwords_keep_the_old_one(alice, mailoutbox):
    Client().post(reverse("password_reset"), {"email": "alice@example.org"})
    link = re.search(r"https?://testserver(\S+)", mailoutbox[0].body).group(1)
    client = Client()
    form_url = client.get(link, follow=True).redirect_chain[-1][0]
    response = client.post(form_url, {"new_password1": NEW, "new_password2": NEW + "x"})
    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.check_password("alice-Password-1")


def test_one_address_cannot_make_the_site_send_mail_without_end(alice, settings, mailoutbox, steady_clock):
    settings.WEBPOP_EMAIL_RATE_PER_HOUR = 3
    flooder = Client(REMOTE_ADDR="203.0.113.66")
    answers = [flooder.post(reverse("password_reset"), {"email": "alice@example.org"}).status_code for _ in range(4)]
    assert answers == [302, 302, 302, 429]
    assert len(mailoutbox) == 3
    # Another client, asking for another address, is not affected.
    other = Client(REMOTE_ADDR="198.51.100.8").post(reverse("password_reset"), {"email": "bob@example.org"})
    assert other.status_code == 302


# --- The e-mail limit: per client network and per address, counted atomically -----------------------


def users(django_user_model, count: int) -> list[str]:
    """Users with an address each (no password hashing: reset only needs a usable one)."""
    addresses = [f"user{n}@example.org" for n in range(count)]
    for n, address in enumerate(addresses):
        django_user_model.objects.create(username=f"user{n}", email=address, password="x")
    return addresses


def test_six_addresses_of_one_ipv6_network_get_only_the_limit_of_reset_emails(
    django_user_model, settings, mailoutbox, steady_clock
):
    settings.WEBPOP_EMAIL_RATE_PER_HOUR = 2
    addresses = users(django_user_model, 7)
    answers = [
        Client(REMOTE_ADDR=f"2001:db8:5:6::{n + 1:x}").post(reverse("password_reset"), {"email": addresses[n]})
        for n in range(6)
    ]
    assert [a.status_code for a in answers] == [302, 302, 429, 429, 429, 429]
    assert 1 <= int(answers[-1]["Retry-After"]) <= 3600
    assert "Too many e-mails" in answers[-1].content.decode()
    assert [m.to for m in mailoutbox] == [[addresses[0]], [addresses[1]]]
    # The next /64 is another subscriber.
    elsewhere = Client(REMOTE_ADDR="2001:db8:5:7::1").post(reverse("password_reset"), {"email": addresses[6]})
    assert elsewhere.status_code == 302 and len(mailoutbox) == 3


def test_one_inbox_gets_only_the_limit_however_many_networks_ask(alice, settings, mailoutbox, steady_clock):
    settings.WEBPOP_EMAIL_RATE_PER_HOUR = 2
    spellings = ["alice@example.org", "ALICE@example.org", "Alice@Example.org", "alice@example.org"]
    answers = [
        Client(REMOTE_ADDR=f"198.51.100.{n + 1}").post(reverse("password_reset"), {"email": spelling}).status_code
        for n, spelling in enumerate(spellings)
    ]
    assert answers == [302, 302, 429, 429]
    assert len(mailoutbox) == 2
    # An address without an account is counted the same way: the answers tell nobody which exist.
    unknown = [
        Client(REMOTE_ADDR=f"192.0.2.{n + 1}").post(reverse("password_reset"), {"email": "nobody@example.org"})
        for n in range(3)
    ]
    assert [a.status_code for a in unknown] == [302, 302, 429]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_from_one_client_send_exactly_the_limit(django_user_model, settings, mailoutbox):
    """Eight reset requests from one address at the same moment (each its own connection): none slips past."""
    # SQLite's in-memory test database cannot be shared by threads with real locking.
    require_postgresql()
    settings.WEBPOP_EMAIL_RATE_PER_HOUR = 3
    addresses = users(django_user_model, 8)
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(addresses))

    def ask(n: int) -> None:
        client = Client(REMOTE_ADDR="203.0.113.50")
        try:
            start.wait()
            status = client.post(reverse("password_reset"), {"email": addresses[n]}).status_code
            with lock:
                statuses.append(status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(addresses))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [302] * 3 + [429] * 5
    assert len(mailoutbox) == 3
