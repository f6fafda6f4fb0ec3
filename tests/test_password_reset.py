"""Password reset by e-mail, without telling anyone whether an address has an account."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

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


def test_one_address_cannot_make_the_site_send_mail_without_end(alice, settings, mailoutbox):
    settings.WEBPOP_EMAIL_RATE_PER_HOUR = 3
    flooder = Client(REMOTE_ADDR="203.0.113.66")
    answers = [flooder.post(reverse("password_reset"), {"email": "alice@example.org"}).status_code for _ in range(4)]
    assert answers == [302, 302, 302, 429]
    assert len(mailoutbox) == 3
    # Others are not affected.
    assert (
        Client(REMOTE_ADDR="198.51.100.8").post(reverse("password_reset"), {"email": "alice@example.org"}).status_code
        == 302
    )
