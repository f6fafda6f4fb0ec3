import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_first_run_creates_the_admin_then_closes():
    client = Client()
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("first_run")
    response = client.post(
        reverse("first_run"),
        {"username": "root", "email": "", "password1": "a-Long-passw0rd!", "password2": "a-Long-passw0rd!"},
    )
    assert response.status_code == 302
    admin = get_user_model().objects.get()
    assert admin.is_superuser and admin.is_staff
    # Logged in straight away, and the page is gone for everyone.
    assert client.get(reverse("accounts:add")).status_code == 200
    assert Client().get(reverse("first_run")).status_code == 404


def test_first_run_is_not_reachable_once_a_user_exists(alice):
    assert Client().get(reverse("first_run")).status_code == 404


def test_login_page_logs_alice_in(alice):
    client = Client()
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-Password-1"})
    assert response.status_code == 302
    assert client.get(reverse("mailbox:inbox")).status_code == 200
