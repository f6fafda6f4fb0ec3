"""The admin: the permission to change users is no way above one's rights; no redirect loop for outsiders."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from users import operators

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.org", None)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


# --- Changing users needs more than the permission to change users -----------------------------


@pytest.fixture
def helpdesk(django_user_model):
    """Staff who may change users (Django's auth.change_user), not a superuser."""
    user = django_user_model.objects.create_user("hal", "hal@example.org", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user", "delete_user"]))
    return user


def _user_form(user, **changes) -> dict:
    data = {
        "username": user.username, "email": user.email, "first_name": "", "last_name": "",
        "is_active": "on", "is_staff": "on", "last_login_0": "", "last_login_1": "",
        "date_joined_0": "2026-11-26", "date_joined_1": "09:00:00",
        "profile-TOTAL_FORMS": "0", "profile-INITIAL_FORMS": "0", "profile-MIN_NUM_FORMS": "0",
        "profile-MAX_NUM_FORMS": "1",
    }  # fmt: skip
    data.update(changes)
    return data


def test_a_user_changer_cannot_change_or_delete_a_superuser(helpdesk, root):
    client = _client(helpdesk)
    User = type(root)
    assert 'name="_save"' not in client.get(_url(User, "change", root.pk)).content.decode()
    assert client.post(_url(User, "change", root.pk), _user_form(root, is_active="")).status_code == 403
    password_url = reverse("admin:auth_user_password_change", args=[root.pk])
    new = {"password1": "Taken-Over-123", "password2": "Taken-Over-123", "usable_password": "true"}
    assert client.post(password_url, new).status_code == 403
    assert client.post(_url(User, "delete", root.pk), {"post": "yes"}).status_code == 403
    client.post(_url(User, "changelist"), {"action": "delete_selected", "_selected_action": [root.pk], "post": "yes"})
    root.refresh_from_db()
    assert root.is_active and root.check_password("Taken-Over-123") is False


def test_a_user_changer_cannot_grant_permissions_or_groups_to_anyone(helpdesk, alice):
    client = _client(helpdesk)
    User = type(alice)
    group = Group.objects.get(name=operators.GROUP)
    everything = list(Permission.objects.values_list("pk", flat=True))
    for target in (helpdesk, alice):
        data = _user_form(target, is_superuser="on", groups=[group.pk], user_permissions=everything)
        response = client.post(_url(User, "change", target.pk), data)
        assert response.status_code == 302, response.content.decode()[:2000]
        target.refresh_from_db()
        assert not target.is_superuser
        assert not target.groups.exists()
        assert not target.user_permissions.exclude(codename__in=["view_user", "change_user", "delete_user"]).exists()


def test_a_user_changer_cannot_turn_off_a_superusers_second_factor(helpdesk, root):
    TOTPDevice.objects.create(user=root, name="phone", confirmed=True)
    data = {"action": "turn_off_two_factor", "_selected_action": [root.pk]}
    _client(helpdesk).post(_url(type(root), "changelist"), data)
    assert TOTPDevice.objects.filter(user=root).exists()


# --- /admin/ for those it does not admit --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/", "/admin/mailbox/message/", "/admin/login/?next=/admin/"])
def test_a_signed_in_user_who_is_not_staff_gets_a_clear_403_not_a_loop(bob_client, path):
    response = bob_client.get(path, follow=True)
    assert response.status_code == 403
    assert len(response.redirect_chain) <= 2
    page = response.content.decode()
    assert "You are signed in as bob, who may not open this page." in page
    assert f'href="{reverse("mailbox:inbox")}"' in page


def test_staff_still_reach_the_admin(root):
    response = _client(root).get("/admin/", follow=True)
    assert response.status_code == 200 and response.redirect_chain == []
