"""Two-factor sign-in: TOTP apps (otp_totp) and single-use backup codes (otp_static)."""

from __future__ import annotations

from django.db import transaction
from django_otp import devices_for_user, match_token, user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

BACKUP_CODE_COUNT = 10


def has_device(user) -> bool:
    return user_has_device(user, confirmed=True)


def pending_totp(user) -> TOTPDevice:
    """The unconfirmed authenticator being set up (one per user; created on first use)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL as an inline SVG QR code (no script, no external image)."""
    import segno  # only the setup page draws a QR code: workers never load it

    return segno.make(device.config_url, error="m").svg_inline(scale=5, border=2, dark="#000", light="#fff")


def secret_text(device: TOTPDevice) -> str:
    """The base32 secret in groups of four, for typing into an app by hand."""
    from base64 import b32encode

    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@transaction.atomic
def confirm_totp(device: TOTPDevice, token: str) -> bool:
    """Confirm the authenticator with a code it shows; other TOTP devices of the user are replaced."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
    if not device.verify_token(_digits(token)):
        return False
    TOTPDevice.objects.filter(user_id=device.user_id).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return True


@transaction.atomic
def new_backup_codes(user) -> list[str]:
    """Replace the user's backup codes; the plain codes are returned once and stored only in the device."""
    device, _ = StaticDevice.objects.get_or_create(user=user, defaults={"name": "Backup codes", "confirmed": True})
    device.token_set.all().delete()
    device.throttle_reset()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def backup_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


@transaction.atomic
def disable(user) -> None:
    for device in devices_for_user(user, confirmed=None):
        device.delete()


def verify(user, token: str) -> Device | None:
    """The device that accepts ``token`` (an app code or a backup code), None if none does.

    Each device throttles wrong guesses itself (growing delays), and a TOTP code works once.
    """
    token = token.strip().replace(" ", "")
    if not token or len(token) > 16:
        return None
    return match_token(user, token)


def wait_seconds(user, device: Device | None = None) -> int:
    """Seconds before the (user's) devices take another code after wrong guesses; 0: now."""
    from django.utils import timezone

    devices = [device] if device is not None else list(devices_for_user(user, confirmed=True))
    wait = 0
    for each in devices:
        allowed, info = each.verify_is_allowed()
        until = (info or {}).get("locked_until")
        if not allowed and until is not None:
            wait = max(wait, int((until - timezone.now()).total_seconds()) + 1)
    return wait


def _digits(token: str) -> str:
    return token.strip().replace(" ", "")
