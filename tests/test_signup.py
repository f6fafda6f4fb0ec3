"""Sign-up: closed, by invitation link, or open with e-mail verification."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from users import signup
from users.models import AuditEvent, Invitation

pytestmark = pytest.mark.django_db

PASSWORD = "carol-Long-pass-9"
NEW = {"username": "carol", "email": "carol@example.org", "password1": PASSWORD, "password2": PASSWORD}


def _link(body: str) -> str:
    return re.search(r"https?://\S+", body).group(0).split("testserver", 1)[1]


@pytest.fixture
def staff(django_user_model):
    from users import operators

    user = django_user_model.objects.create_user("root", "root@example.org", "root-Password-1", is_staff=True)
    operators.grant(user)
    return user


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def test_closed_signup_creates_no_one_and_says_why(alice, settings):
    settings.WEBPOP_SIGNUP = "closed"
    response = Client().post(reverse("users:signup"), NEW)
    assert response.status_code == 403
    assert "does not take new users" in response.content.decode()
    assert not get_user_model().objects.filter(username="carol").exists()
    assert "Create an account" not in Client().get(reverse("login")).content.decode()


def test_open_signup_needs_the_emailed_link_before_signing_in(alice, settings, mailoutbox):
    settings.WEBPOP_SIGNUP = "open"
    client = Client()
    assert "Create an account" in client.get(reverse("login")).content.decode()
    response = client.post(reverse("users:signup"), NEW)
    assert response.status_code == 302 and response["Location"] == reverse("users:signup_sent")
    carol = get_user_model().objects.get(username="carol")
    assert not carol.is_active
    # Not yet: the password is right but the address is unconfirmed.
    response = client.post(reverse("login"), {"username": "carol", "password": NEW["password1"]})
    assert response.status_code == 200

    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["carol@example.org"]
    link = _link(mailoutbox[0].body)
    page = client.get(link)  # a mail scanner opening the link changes nothing
    assert page.status_code == 200 and "Confirm" in page.content.decode()
    carol.refresh_from_db()
    assert not carol.is_active
    assert client.post(link).status_code == 302
    carol.refresh_from_db()
    assert carol.is_active
    assert AuditEvent.objects.filter(action="signup.verified", actor=carol).exists()

    response = client.post(reverse("login"), {"username": "carol", "password": NEW["password1"]})
    assert response.status_code == 302
    # The link worked once.
    assert Client().get(link).status_code == 400


def test_verification_link_does_not_reactivate_a_user_the_admin_deactivated(alice, settings, mailoutbox):
    settings.WEBPOP_SIGNUP = "open"
    Client().post(reverse("users:signup"), NEW)
    link = _link(mailoutbox[0].body)
    carol = get_user_model().objects.get(username="carol")
    carol.is_active = True
    carol.last_login = timezone.now()
    carol.save()
    carol.is_active = False  # an administrator switched her off after she had used the site
    carol.save()
    assert Client().post(link).status_code == 400
    carol.refresh_from_db()
    assert not carol.is_active


def test_signing_up_with_a_taken_address_tells_its_owner_not_the_visitor(alice, settings, mailoutbox):
    settings.WEBPOP_SIGNUP = "open"
    response = Client().post(reverse("users:signup"), {**NEW, "email": "ALICE@example.org"})
    assert response.status_code == 302 and response["Location"] == reverse("users:signup_sent")
    assert not get_user_model().objects.filter(username="carol").exists()
    assert mailoutbox[0].to == ["ALICE@example.org"]
    assert "already has an account" in mailoutbox[0].body


def test_a_bad_form_keeps_what_was_typed(alice, settings):
    settings.WEBPOP_SIGNUP = "open"
    response = Client().post(reverse("users:signup"), {**NEW, "password2": "different"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'value="carol@example.org"' in body and 'value="carol"' in body
    assert "didn’t match" in body or "didn't match" in body


def test_resend_sends_a_new_link_only_to_unverified_signups(alice, settings, mailoutbox):
    settings.WEBPOP_SIGNUP = "open"
    Client().post(reverse("users:signup"), NEW)
    Client().post(reverse("users:resend"), {"email": "carol@example.org"})
    Client().post(reverse("users:resend"), {"email": "alice@example.org"})  # active: nothing sent
    assert [m.to for m in mailoutbox] == [["carol@example.org"], ["carol@example.org"]]


def test_invitation_link_works_once(alice, settings, staff_client, mailoutbox):
    settings.WEBPOP_SIGNUP = "invite"
    assert Client().get(reverse("users:signup")).status_code == 403  # no open sign-up
    response = staff_client.post(reverse("users:invitations"), {"email": "carol@example.org", "days": 7}, follow=True)
    assert response.redirect_chain == [(reverse("users:invitations"), 302)]
    link = _link(mailoutbox[0].body)
    assert link in response.content.decode()  # shown to the staff member too, once
    assert link not in staff_client.get(reverse("users:invitations")).content.decode()
    invitation = Invitation.objects.get()
    assert invitation.created_by.username == "root"
    assert link.rstrip("/").rsplit("/", 1)[1] not in invitation.token_hash  # only the hash is stored

    client = Client()
    # The address the invitation went to is the account's, whatever the form says.
    response = client.post(link, {**NEW, "email": "mallory@example.net"})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:add")
    carol = get_user_model().objects.get(username="carol")
    assert carol.is_active and carol.email == "carol@example.org"
    assert client.get(reverse("accounts:add")).status_code == 200  # signed in
    invitation.refresh_from_db()
    assert invitation.used_at is not None and invitation.used_by == carol

    again = Client().post(link, {**NEW, "username": "dave"})
    assert again.status_code == 410
    assert not get_user_model().objects.filter(username="dave").exists()


def test_an_invited_person_is_told_when_the_address_already_has_an_account(alice, staff, settings):
    settings.WEBPOP_SIGNUP = "invite"
    _invitation, token = signup.create_invitation(staff)
    response = Client().post(reverse("users:invitation", args=[token]), {**NEW, "email": "alice@example.org"})
    assert response.status_code == 200 and "already has an account" in response.content.decode()
    assert not get_user_model().objects.filter(username="carol").exists()
    assert Invitation.objects.get().is_open  # not used up by the failed attempt


def test_expired_and_revoked_invitations_do_not_work(staff, staff_client, settings):
    settings.WEBPOP_SIGNUP = "invite"
    expired, expired_token = signup.create_invitation(staff)
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    revoked, revoked_token = signup.create_invitation(staff)
    assert staff_client.post(reverse("users:revoke_invitation", args=[revoked.pk])).status_code == 302
    for token in (expired_token, revoked_token):
        response = Client().post(reverse("users:invitation", args=[token]), NEW)
        assert response.status_code == 410
    assert Client().get(reverse("users:invitation", args=["not-a-token"])).status_code == 410
    assert not get_user_model().objects.filter(username="carol").exists()


def test_invitation_links_do_not_work_while_signup_is_closed(staff, settings):
    settings.WEBPOP_SIGNUP = "closed"
    _invitation, token = signup.create_invitation(staff)
    assert Client().post(reverse("users:invitation", args=[token]), NEW).status_code == 403
    assert not get_user_model().objects.filter(username="carol").exists()


@pytest.mark.parametrize("is_staff", [False, True])
def test_only_holders_of_the_permission_see_the_invitations_page(alice, alice_client, staff, is_staff):
    alice.is_staff = is_staff  # staff status alone grants nothing
    alice.save()
    invitation, _token = signup.create_invitation(staff)
    assert alice_client.get(reverse("users:invitations")).status_code == 403
    assert alice_client.post(reverse("users:invitations"), {"days": 3}).status_code == 403
    assert alice_client.post(reverse("users:revoke_invitation", args=[invitation.pk])).status_code == 403
    assert Invitation.objects.count() == 1
    assert Invitation.objects.get().is_open


def test_revoking_needs_post(staff, staff_client):
    invitation, _token = signup.create_invitation(staff)
    assert staff_client.get(reverse("users:revoke_invitation", args=[invitation.pk])).status_code == 405
    invitation.refresh_from_db()
    assert invitation.is_open


def test_bad_signup_setting_fails_loudly(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from webpop.lib.env import env_choice

    monkeypatch.setenv("WEBPOP_SIGNUP", "everyone")
    with pytest.raises(ImproperlyConfigured, match="WEBPOP_SIGNUP"):
        env_choice("WEBPOP_SIGNUP", "closed", ("closed", "invite", "open"))
    monkeypatch.setenv("WEBPOP_SIGNUP", "Invite")
    assert env_choice("WEBPOP_SIGNUP", "closed", ("closed", "invite", "open")) == "invite"


def test_signups_never_confirmed_are_removed_after_a_week(alice, settings, django_user_model):
    from users import actions

    settings.WEBPOP_SIGNUP = "open"
    Client().post(reverse("users:signup"), NEW)
    Client().post(reverse("users:signup"), {**NEW, "username": "dave", "email": "dave@example.org"})
    deactivated = django_user_model.objects.create_user("erin", "erin@example.org", "x", is_active=False)
    week_ago = timezone.now() - dt.timedelta(days=8)
    django_user_model.objects.filter(username__in=["carol", "erin"]).update(date_joined=week_ago)

    assert actions.cleanup()["unverified_users"] == 1
    remaining = set(django_user_model.objects.values_list("username", flat=True))
    assert remaining == {"alice", "dave", "erin"}  # dave still has time; erin was not an open sign-up
    assert deactivated.pk in django_user_model.objects.values_list("pk", flat=True)


def test_signup_and_verification_emails_count_against_one_limit_per_network(alice, settings, mailoutbox, steady_clock):
    settings.WEBPOP_SIGNUP = "open"
    settings.WEBPOP_EMAIL_RATE_PER_HOUR = 2
    network = "2001:db8:77:1::"
    assert Client(REMOTE_ADDR=f"{network}1").post(reverse("users:signup"), NEW).status_code == 302
    resend = Client(REMOTE_ADDR=f"{network}2").post(reverse("users:resend"), {"email": "carol@example.org"})
    assert resend.status_code == 302
    dave = {**NEW, "username": "dave", "email": "dave@example.org"}
    refused = Client(REMOTE_ADDR=f"{network}3").post(reverse("users:signup"), dave)
    assert refused.status_code == 429
    assert not get_user_model().objects.filter(username="dave").exists()
    assert [m.to for m in mailoutbox] == [["carol@example.org"], ["carol@example.org"]]
