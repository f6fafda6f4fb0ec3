"""Saving and testing an account's sending settings."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.crypto import DecryptionError
from accounts.models import MailAccount

from . import send
from .models import SmtpAuth, SmtpSettings
from .smtp import SmtpError

FIELDS = ("host", "port", "security", "auth", "username", "from_name", "from_email", "signature")


def unsaved(account: MailAccount, data: dict, existing: SmtpSettings | None) -> SmtpSettings:
    """Settings from a valid form, not saved; the stored password is kept unless a new one was typed."""
    smtp = SmtpSettings(account=account, **{name: data.get(name) or "" for name in FIELDS})
    smtp.port = data["port"]
    if data.get("password"):
        smtp.set_password(data["password"])
    elif existing is not None and data.get("auth") == SmtpAuth.SEPARATE:
        smtp.password_encrypted = existing.password_encrypted
    if smtp.auth != SmtpAuth.SEPARATE:
        smtp.username, smtp.password_encrypted = "", ""
    return smtp


@transaction.atomic
def save(account: MailAccount, data: dict) -> SmtpSettings:
    existing = SmtpSettings.objects.select_for_update().filter(account=account).first()
    smtp = unsaved(account, data, existing)
    if existing is not None:
        smtp.pk = existing.pk
    smtp.updated_at = timezone.now()
    smtp.save()
    return smtp


@dataclass
class TestReport:
    ok: bool
    message: str
    error_class: str = ""


def test(smtp: SmtpSettings) -> TestReport:
    """Connect, secure the connection and log in, as sending would; nothing is sent."""
    try:
        with send.client_for(smtp) as client:
            mechanism = client.login(send.credentials(smtp.account, smtp))
            security = _("encrypted") if client.encrypted else _("NOT encrypted")
    except SmtpError as exc:
        return TestReport(False, str(exc), exc.error_class)
    except DecryptionError:
        return TestReport(False, _("The stored password cannot be read; enter it again."), "credentials")
    return TestReport(
        True,
        _("Connected to %(host)s (%(security)s) and logged in with %(mechanism)s.")
        % {"host": smtp.host, "security": security, "mechanism": mechanism},
    )
