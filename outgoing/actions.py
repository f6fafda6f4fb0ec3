"""Saving and testing an account's sending settings; the first message from an account; OAuth2 accounts'
settings, made without asking."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.crypto import DecryptionError
from accounts.models import MailAccount

from . import compose, identities, send
from .models import OutgoingMessage, SmtpAuth, SmtpSettings
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
    identities.sync_default(smtp)
    return smtp


@dataclass
class TestReport:
    ok: bool
    message: str
    error_class: str = ""
    headline: str = ""  # one line for the editor: as whom, through which server, and whether it works


def test(smtp: SmtpSettings) -> TestReport:
    """Connect, secure the connection and log in, as sending would; nothing is sent."""
    names = {"address": smtp.from_email, "server": f"{smtp.host}:{smtp.port}"}
    failed = _("Sending as %(address)s through %(server)s does not work:") % names
    try:
        with send.client_for(smtp) as client:
            mechanism = client.login(send.credentials(smtp.account, smtp))
            security = _("encrypted") if client.encrypted else _("NOT encrypted")
    except SmtpError as exc:
        return TestReport(False, str(exc), exc.error_class, failed)
    except DecryptionError:
        return TestReport(False, _("The stored password cannot be read; enter it again."), "credentials", failed)
    return TestReport(
        True,
        _("Connected to %(host)s (%(security)s) and logged in with %(mechanism)s.")
        % {"host": smtp.host, "security": security, "mechanism": mechanism},
        headline=_("Sending as %(address)s through %(server)s — works.") % names,
    )


# --- The first message from an account ------------------------------------------------


class NotQueued(Exception):
    """The settings worked and were saved, but the message could not be queued (the hourly limit, its size)."""


def first_send(owner, outgoing: OutgoingMessage, data: dict) -> tuple[TestReport, OutgoingMessage | None]:
    """Send the first message from an account that cannot send yet, with the settings typed beside it.

    The message is checked first (``compose.ComposeError``: nothing saved, nothing connected), then the settings
    are tested; only settings that work are saved, and the message is queued as any other (its Undo window
    included). Returns the test's report and the queued message (None when the test failed).
    """
    smtp = unsaved(outgoing.account, data, None)
    send.draft_of(outgoing, smtp)
    report = test(smtp)
    if not report.ok:
        return report, None
    save(outgoing.account, data)
    try:
        return report, send.queue(owner, outgoing.id)
    except (compose.ComposeError, send.SendRefused) as exc:
        raise NotQueued(str(exc)) from exc


# --- OAuth2 accounts send with their grant --------------------------------------------


def oauth_settings(account: MailAccount) -> dict | None:
    """The sending settings of an account signed in with OAuth2 whose grant may send: its provider's SMTP server,
    logged in with the grant (XOAUTH2). None for any other account."""
    from oauth import providers
    from oauth.models import Grant

    grant = Grant.objects.filter(account=account).first()
    provider = providers.get(grant.provider) if grant is not None else None
    if provider is None or not provider.sends_with(grant.scope):
        return None
    return {
        "host": provider.smtp_host,
        "port": provider.smtp_port,
        "security": provider.smtp_security,
        "auth": SmtpAuth.OAUTH2,
        "from_email": grant.email or account.username,
    }


def configure_oauth(account: MailAccount) -> SmtpSettings | None:
    """Give an OAuth2 account its sending settings when it has none and its grant may send (else nothing)."""
    if SmtpSettings.objects.filter(account=account).exists():
        return None
    data = oauth_settings(account)
    if data is None:
        return None
    try:
        return save(account, data)
    except IntegrityError:  # another request made them a moment ago
        return None


def configure_automatic(owner) -> int:
    """Settings for each of the owner's OAuth2 accounts that has none (added before sending came with the grant)."""
    accounts = MailAccount.objects.filter(owner=owner, smtp__isnull=True, oauth_grant__isnull=False)
    return sum(configure_oauth(account) is not None for account in accounts)
