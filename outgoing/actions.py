"""State changes of sending: an account's sending settings and the first message from it; queueing a message
(its task published after commit) and taking it back within the Undo window; OAuth2 accounts' settings, made
without asking; a picture put into a draft's text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.crypto import DecryptionError
from accounts.models import MailAccount

from . import compose, identities, rich, send, tasks
from .models import OutgoingAttachment, OutgoingMessage, OutgoingState, SmtpAuth, SmtpSettings
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
        return report, queue(owner, outgoing.id)
    except (compose.ComposeError, send.SendRefused) as exc:
        raise NotQueued(str(exc)) from exc


# --- Queueing and Undo ------------------------------------------------------------------


def queue(owner, outgoing_id: int, *, delay: int | None = None) -> OutgoingMessage:
    """Validate, build and queue a draft for sending; Celery gets it after commit.

    It leaves no earlier than ``delay`` seconds from now (default: the user's Undo window). That time is on
    the row (``next_attempt_at``): the claim refuses it before, and beat's sweep sends it should the task be lost.
    Raises ``compose.ComposeError`` (a field is wrong) or ``send.SendRefused``.
    """
    delay = send.undo_seconds(owner.id) if delay is None else delay
    with transaction.atomic():
        # One queue at a time per user, so two tabs cannot both slip under the rate limit.
        send.lock_owner(owner)
        outgoing = (
            OutgoingMessage.objects.select_for_update()
            .select_related("account")
            .filter(id=outgoing_id, owner=owner, state__in=send.EDITABLE)
            .first()
        )
        if outgoing is None:
            raise send.SendRefused(_("This message is already being sent or was sent."))
        smtp = send.settings_of(outgoing.account)
        if smtp is None:
            raise send.SendRefused(
                _("Set up sending for %(account)s first.") % {"account": outgoing.account.display_name}
            )
        limit = send.limit_per_hour(owner.id)
        if send.sent_in_last_hour(owner.id) >= limit:
            raise send.SendRefused(
                _("You have reached the limit of %(n)d messages per hour. Your message is kept in Drafts.")
                % {"n": limit}
            )
        draft = send.draft_of(outgoing, smtp)
        now = timezone.now()
        message_id = compose.new_message_id(draft.from_email)
        raw = compose.build(draft, message_id=message_id, date=timezone.localtime(now))
        if len(raw) > settings.WEBPOP_MAX_SEND_BYTES:
            raise send.SendRefused(
                _("The message is %(size)s bytes; at most %(limit)s bytes can be sent.")
                % {"size": f"{len(raw):,}", "limit": f"{settings.WEBPOP_MAX_SEND_BYTES:,}"}
            )
        due = now + dt.timedelta(seconds=delay)
        OutgoingMessage.objects.filter(id=outgoing.id).update(
            state=OutgoingState.QUEUED,
            raw=raw,
            message_id=message_id,
            queued_at=now,
            updated_at=now,
            next_attempt_at=due,
            # Published below for this try (so the sweep does not publish it again when it falls due);
            # should that task be lost, the sweep publishes it REDISPATCH_AFTER later.
            enqueued_at=due,
            attempts=0,
            error="",
            error_class="",
            claimed_at=None,
        )
        send.touch_unsubscribe_pages([outgoing.id])  # an unsubscribe's e-mail sent again from the Outbox
        transaction.on_commit(lambda: tasks.publish_send(outgoing.id, delay))
    outgoing.refresh_from_db()
    return outgoing


@transaction.atomic
def undo(owner, outgoing_id: int) -> bool:
    """Take a message waiting in its Undo window back to Drafts, text and attachments intact.

    A conditional UPDATE that only matches while the message is queued for its first try and its time has
    not come: the claim (``send.deliver``) needs that time to have come, so exactly one of the two wins. False:
    too late (it is being sent or was sent).
    """
    now = timezone.now()
    taken_back = OutgoingMessage.objects.filter(
        id=outgoing_id, owner=owner, state=OutgoingState.QUEUED, attempts=0, next_attempt_at__gt=now
    ).update(
        state=OutgoingState.DRAFT,
        raw=None,
        message_id="",
        queued_at=None,
        next_attempt_at=None,
        enqueued_at=None,
        updated_at=now,
    )
    if taken_back:
        send.touch_unsubscribe_pages([outgoing_id])
    return bool(taken_back)


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


@transaction.atomic
def add_image(owner, outgoing_id: int, filename: str, data: bytes) -> OutgoingAttachment:
    """A picture put into a draft's text: stored with a new Content-ID, sent while the text shows it."""
    rows = OutgoingMessage.objects.select_for_update().filter(id=outgoing_id, owner=owner, state__in=send.EDITABLE)
    outgoing = rows.first()
    if outgoing is None:
        raise rich.ImageRefused(_("This message is already being sent or was sent; it can no longer be changed."))
    kind = rich.picture_type(data)
    if kind is None:
        raise rich.ImageRefused(_("Only PNG, JPEG, GIF and WebP pictures can go into the text."))
    if len(data) > settings.WEBPOP_MAX_SEND_BYTES:
        raise rich.ImageRefused(_("This picture is too large."))
    try:
        send._attachment_budget(outgoing, [(filename, kind, data)])
    except send.SendRefused as exc:
        raise rich.ImageRefused(str(exc)) from None
    sender = SmtpSettings.objects.filter(account_id=outgoing.account_id).values_list("from_email", flat=True).first()
    return OutgoingAttachment.objects.create(
        message=outgoing,
        filename=compose.file_name(filename),
        content_type=kind,
        size=len(data),
        data=data,
        content_id=compose.new_message_id(sender or "")[1:-1],  # <random@domain> without its brackets
    )
