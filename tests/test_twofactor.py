"""Two-factor sign-in with a TOTP app and backup codes; the admin site asks for it too."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from users import twofactor
from users.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "alice-Password-1"


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture
def alice_2fa(alice):
    device = TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    codes = twofactor.new_backup_codes(alice)
    return device, codes


def _password_step(client: Client, next_url: str = "") -> None:
    data = {"username": "alice", "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    response = client.post(reverse("login"), data)
    assert response.status_code == 302 and response["Location"] == reverse("login_otp")


def test_setup_shows_a_qr_code_and_turns_on_with_a_right_code(alice, alice_client):
    page = alice_client.get(reverse("users:twofactor_setup"))
    body = page.content.decode()
    assert page.status_code == 200
    qr = re.search(r'<figure class="qr">(.*?)</figure>', body, re.S).group(1)
    assert qr.startswith("<svg") and "<script" not in qr and "style=" not in qr
    device = TOTPDevice.objects.get(user=alice)
    assert not device.confirmed
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', body).group(1)
    assert len(secret.replace(" ", "")) >= 32

    wrong = alice_client.post(reverse("users:twofactor_setup"), {"token": "000000"})
    assert wrong.status_code == 200 and "not right" in wrong.content.decode()
    assert not twofactor.has_device(alice)

    device.refresh_from_db()
    # A wrong code makes the device wait before the next one (growing delays against guessing).
    assert "Wait" in alice_client.post(reverse("users:twofactor_setup"), {"token": code_for(device)}).content.decode()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()
    response = alice_client.post(reverse("users:twofactor_setup"), {"token": code_for(device)})
    assert response.status_code == 200
    codes = re.findall(r"<li><code>(\w+)</code></li>", response.content.decode())
    assert len(codes) == twofactor.BACKUP_CODE_COUNT
    assert twofactor.has_device(alice)
    assert AuditEvent.objects.filter(action="2fa.enabled", actor=alice).exists()
    assert "backup codes left" in alice_client.get(reverse("users:security")).content.decode()


def test_signing_in_asks_for_the_code_after_the_password(alice, alice_2fa):
    device, _codes = alice_2fa
    client = Client()
    _password_step(client)
    # Not signed in yet.
    assert client.get(reverse("mailbox:inbox")).status_code == 302
    wrong = client.post(reverse("login_otp"), {"token": "123456"})
    assert wrong.status_code == 200 and "not right" in wrong.content.decode()
    assert AuditEvent.objects.filter(action="login.2fa_failed").count() == 1
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    device.throttling_failure_count = 0  # instead of waiting out the delay
    device.throttling_failure_timestamp = None
    device.save()

    response = client.post(reverse("login_otp"), {"token": code_for(device)})
    assert response.status_code == 302 and response["Location"] == reverse("mailbox:inbox")
    assert client.get(reverse("mailbox:inbox")).status_code == 200
    assert AuditEvent.objects.filter(action="login", actor=alice).exists()

    # The same code does not work twice.
    other = Client()
    _password_step(other)
    assert other.post(reverse("login_otp"), {"token": code_for(device)}).status_code == 200
    assert other.get(reverse("mailbox:inbox")).status_code == 302


def test_a_backup_code_signs_in_once(alice, alice_2fa):
    _device, codes = alice_2fa
    client = Client()
    _password_step(client, next_url="/accounts/")
    response = client.post(reverse("login_otp"), {"token": codes[0]})
    assert response.status_code == 302 and response["Location"] == "/accounts/"
    assert twofactor.backup_codes_left(alice) == len(codes) - 1

    again = Client()
    _password_step(again)
    assert again.post(reverse("login_otp"), {"token": codes[0]}).status_code == 200
    assert again.get(reverse("mailbox:inbox")).status_code == 302


def test_too_many_wrong_codes_start_the_sign_in_over(alice, alice_2fa):
    client = Client()
    _password_step(client)
    for _ in range(5):
        response = client.post(reverse("login_otp"), {"token": "nope"})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get(reverse("login_otp")).status_code == 302  # nothing pending any more


def test_code_step_without_a_password_step_goes_back_to_sign_in(alice_2fa):
    response = Client().post(reverse("login_otp"), {"token": "123456"})
    assert response.status_code == 302 and response["Location"] == reverse("login")


def test_next_is_kept_only_when_it_stays_on_this_site(alice, alice_2fa):
    device, _codes = alice_2fa
    client = Client()
    _password_step(client, next_url="https://evil.example/")
    response = client.post(reverse("login_otp"), {"token": code_for(device)})
    assert response["Location"] == reverse("mailbox:inbox")


def test_admin_site_asks_for_the_code_when_the_session_did_not_give_it(alice, alice_2fa):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    device, _codes = alice_2fa
    client = Client()
    client.force_login(alice)  # e.g. a session from before 2FA was turned on
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login_otp"))
    response = client.post(response["Location"], {"token": code_for(device)})
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert client.get(reverse("admin:index")).status_code == 200


def test_admin_login_page_is_the_site_login(alice):
    response = Client().get(reverse("admin:login"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login") + "?next=")


def test_turning_off_needs_the_password(alice, alice_2fa, alice_client, mailoutbox):
    url = reverse("users:twofactor_disable")
    assert alice_client.get(url).status_code == 200
    assert alice_client.post(url, {"password": "wrong"}).status_code == 200
    assert twofactor.has_device(alice)
    assert alice_client.post(url, {"password": PASSWORD}).status_code == 302
    assert not twofactor.has_device(alice)
    assert not StaticDevice.objects.filter(user=alice).exists()
    assert AuditEvent.objects.filter(action="2fa.disabled", actor=alice).exists()
    assert [m.subject for m in mailoutbox] == ["webpop: two-factor sign-in was turned off"]
    # And signing in asks for the password only again.
    assert Client().post(reverse("login"), {"username": "alice", "password": PASSWORD})["Location"] == "/"


def test_new_backup_codes_replace_the_old_ones(alice, alice_2fa, alice_client):
    _device, old = alice_2fa
    response = alice_client.post(reverse("users:backup_codes"), {"password": PASSWORD})
    new = re.findall(r"<li><code>(\w+)</code></li>", response.content.decode())
    assert len(new) == twofactor.BACKUP_CODE_COUNT and not set(new) & set(old)
    assert twofactor.verify(alice, new[0]) is not None
    assert twofactor.verify(alice, old[0]) is None


def test_staff_never_see_a_users_authenticator_secret_or_backup_codes_in_the_admin(alice, alice_2fa, staff):
    # A secret seen once is a second factor for good: the admin shows devices, never their keys.
    staff.is_superuser = True
    staff.save()
    client = Client()
    client.force_login(staff)
    device, codes = alice_2fa
    static = StaticDevice.objects.get(user=alice)
    pages = [
        reverse("admin:otp_totp_totpdevice_change", args=[device.pk]),
        reverse("admin:otp_totp_totpdevice_changelist"),
        reverse("admin:otp_static_staticdevice_change", args=[static.pk]),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert device.key not in response.content.decode(), url
        assert not [code for code in codes if code in response.content.decode()], url
    for name in ("admin:otp_totp_totpdevice_config", "admin:otp_totp_totpdevice_qrcode"):
        assert client.get(reverse(name, args=[device.pk])).status_code == 403
        assert client.get(reverse(name, args=[device.pk + 1000])).status_code == 403  # was a server error
