"""The life of an outgoing message: draft → queued → sending → sent, or failed (the Outbox).

* Drafts are edited only while they are drafts (or failed): every write is a
  conditional UPDATE on the state, so an autosave racing a send changes nothing.
* :func:`queue` checks the rate limit, validates every field, builds the bytes
  once (Message-ID, Date) and hands the id to Celery after commit.
* :func:`deliver` claims a queued message with a conditional UPDATE (one worker
  sends it), sends it, and files the exact bytes in Sent through the mail store
  (server state "gone" and a UIDL with a space, which no POP3 server can use:
  sync never fetches, reconciles or deletes it). A temporary failure puts it
  back in the queue for a retry; a permanent one lands in the Outbox with the
  server's answer.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.crypto import DecryptionError
from accounts.models import MailAccount, Profile
from mailbox import mime, store, threads
from mailbox.models import Attachment, Folder, Message, ServerState

from . import compose
from .models import OutgoingAttachment, OutgoingMessage, OutgoingState, SmtpAuth, SmtpSettings
from .smtp import Credentials, SmtpClient, SmtpError, SmtpPermanentError, SmtpTemporaryError

log = logging.getLogger(__name__)

EDITABLE = (OutgoingState.DRAFT, OutgoingState.FAILED)
IN_FLIGHT = (OutgoingState.QUEUED, OutgoingState.SENDING)
# A worker that died while sending leaves its claim; after this long another may send it.
CLAIM_LEASE = dt.timedelta(minutes=30)
# A queued message untouched this long lost its task (the longest retry wait is 75 minutes).
STALE_AFTER = dt.timedelta(minutes=90)
MAX_ATTEMPTS = 20  # in all, across resumed tasks: then it goes to the Outbox


class SendRefused(ValueError):
    """The message cannot be queued or changed now (rate limit, size, state); nothing was lost."""


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"  # temporary failure: back in the queue
    FAILED = "failed"  # permanent failure: in the Outbox
    SKIPPED = "skipped"  # not queued (already sent, being sent, or discarded)


# --- Identity and limits ------------------------------------------------------------


def own_addresses(user) -> set[str]:
    """Every address the user sends or receives as, lower case: never a reply's recipient."""
    found = {user.email.lower()} if user.email else set()
    for username, from_email in MailAccount.objects.filter(owner=user).values_list("username", "smtp__from_email"):
        for address in (username, from_email):
            if address and "@" in address:
                found.add(address.lower())
    return found


def sendable_accounts(user) -> list[MailAccount]:
    return list(MailAccount.objects.filter(owner=user, smtp__isnull=False).select_related("smtp"))


def limit_per_hour(user_id: int) -> int:
    """The user's quota (accounts.Profile, edited by the admin on the user's page), else the site's."""
    profile = Profile.objects.filter(user_id=user_id).first()
    return profile.effective_send_rate_per_hour if profile else settings.WEBPOP_SEND_RATE_PER_HOUR


def sent_in_last_hour(user_id: int) -> int:
    """Messages sent in the last hour plus those waiting to go (they will count once sent)."""
    since = timezone.now() - dt.timedelta(hours=1)
    rows = OutgoingMessage.objects.filter(owner_id=user_id)
    return rows.filter(Q(state=OutgoingState.SENT, sent_at__gte=since) | Q(state__in=IN_FLIGHT)).count()


# --- Drafts ---------------------------------------------------------------------------


def _attachment_budget(
    outgoing: OutgoingMessage | None, new: list[tuple[str, str, bytes]], removed: list[int] = ()
) -> None:
    existing = 0
    if outgoing is not None and outgoing.pk:
        existing = sum(outgoing.attachments.exclude(id__in=list(removed)).values_list("size", flat=True))
    total = existing + sum(len(data) for _n, _t, data in new)
    # Base64 makes attachments a third bigger on the wire.
    if total * 4 // 3 > settings.WEBPOP_MAX_SEND_BYTES:
        raise SendRefused(
            _("Attachments are too large: at most %(mb).0f MB per message.")
            % {"mb": settings.WEBPOP_MAX_SEND_BYTES * 3 / 4 / 1024 / 1024}
        )


def _clean_filename(name: str) -> str:
    cleaned = mime.clean_filename(name or "")
    return (cleaned or "attachment")[:255]


@transaction.atomic
def save_draft(
    owner,
    outgoing: OutgoingMessage | None,
    *,
    account: MailAccount,
    to: str = "",
    cc: str = "",
    bcc: str = "",
    subject: str = "",
    body: str = "",
    add: list[tuple[str, str, bytes]] = (),
    remove: list[int] = (),
) -> OutgoingMessage:
    """Create or update a draft (a failed message becomes a draft again when edited)."""
    if account.owner_id != owner.id:
        raise SendRefused(_("Unknown account."))
    add = [(_clean_filename(name), ctype or "application/octet-stream", data) for name, ctype, data in add]
    _attachment_budget(outgoing, add, remove)
    fields = {"account": account, "to": to, "cc": cc, "bcc": bcc, "subject": subject, "body": body}
    now = timezone.now()
    if outgoing is None:
        outgoing = OutgoingMessage.objects.create(owner=owner, created_at=now, updated_at=now, **fields)
    else:
        changed = OutgoingMessage.objects.filter(id=outgoing.id, owner=owner, state__in=EDITABLE).update(
            state=OutgoingState.DRAFT, raw=None, updated_at=now, **fields
        )
        if not changed:
            raise SendRefused(_("This message is already being sent or was sent; it can no longer be changed."))
        for name, value in fields.items():
            setattr(outgoing, name, value)
        outgoing.state, outgoing.updated_at = OutgoingState.DRAFT, now
    if remove:
        OutgoingAttachment.objects.filter(message=outgoing, id__in=list(remove)).delete()
    OutgoingAttachment.objects.bulk_create(
        OutgoingAttachment(message=outgoing, filename=name, content_type=ctype, size=len(data), data=data)
        for name, ctype, data in add
    )
    return outgoing


def _settings_of(account: MailAccount) -> SmtpSettings | None:
    return SmtpSettings.objects.filter(account=account).first()


@transaction.atomic
def start_reply(owner, message: Message, kind: str) -> OutgoingMessage:
    """A draft answering or forwarding ``message`` (the caller checked it is the owner's)."""
    original = compose.original_of(message)
    account = message.account
    smtp = _settings_of(account)
    if smtp is None:  # the account it came to cannot send: answer from one that can, if any
        others = sendable_accounts(owner)
        if others:
            account, smtp = others[0], others[0].smtp
    signature = smtp.signature if smtp else ""
    now = timezone.now()
    outgoing = OutgoingMessage(owner=owner, account=account, kind=kind, source=message, created_at=now, updated_at=now)
    if kind == OutgoingMessage.Kind.FORWARD:
        outgoing.subject = compose.forward_subject(original.subject)
        outgoing.body = compose.forward_body(original, signature)
        # Forwarding keeps the conversation together (as Gmail does) without claiming to answer.
        outgoing.references = compose.threading_headers(original)[1]
    else:
        to, cc = compose.reply_recipients(
            original, own_addresses(owner), reply_all=kind == OutgoingMessage.Kind.REPLY_ALL
        )
        outgoing.to, outgoing.cc = compose.format_mailboxes(to), compose.format_mailboxes(cc)
        outgoing.subject = compose.reply_subject(original.subject)
        outgoing.body = compose.reply_body(original, signature)
        outgoing.in_reply_to, outgoing.references = compose.threading_headers(original)
    outgoing.save()
    if kind == OutgoingMessage.Kind.FORWARD:
        _copy_attachments(message, outgoing)
    return outgoing


def _copy_attachments(message: Message, outgoing: OutgoingMessage) -> None:
    rows = Attachment.objects.filter(message=message).exclude(inline=True, content_id__gt="")
    copies = []
    for attachment in rows:
        with store.open_file(attachment.stored_path) as fh:
            data = fh.read()
        copies.append((attachment.filename, attachment.content_type, data))
    _attachment_budget(outgoing, copies)
    OutgoingAttachment.objects.bulk_create(
        OutgoingAttachment(message=outgoing, filename=_clean_filename(n), content_type=t, size=len(d), data=d)
        for n, t, d in copies
    )


@transaction.atomic
def discard(owner, outgoing_id: int) -> bool:
    """Delete a draft or a failed message (never one being sent)."""
    deleted, _counts = OutgoingMessage.objects.filter(id=outgoing_id, owner=owner, state__in=EDITABLE).delete()
    return bool(deleted)


# --- Queueing ---------------------------------------------------------------------------


def queue(owner, outgoing_id: int) -> OutgoingMessage:
    """Validate, build and queue a draft for sending; Celery gets it after commit.

    Raises ``compose.ComposeError`` (a field is wrong) or ``SendRefused``.
    """
    with transaction.atomic():
        # One queue at a time per user, so two tabs cannot both slip under the rate limit.
        get_user_model().objects.select_for_update().filter(id=owner.id).first()
        outgoing = (
            OutgoingMessage.objects.select_for_update()
            .select_related("account")
            .filter(id=outgoing_id, owner=owner, state__in=EDITABLE)
            .first()
        )
        if outgoing is None:
            raise SendRefused(_("This message is already being sent or was sent."))
        smtp = _settings_of(outgoing.account)
        if smtp is None:
            raise SendRefused(_("Set up sending for %(account)s first.") % {"account": outgoing.account.display_name})
        limit = limit_per_hour(owner.id)
        if sent_in_last_hour(owner.id) >= limit:
            raise SendRefused(
                _("You have reached the limit of %(n)d messages per hour. Your message is kept in Drafts.")
                % {"n": limit}
            )
        draft = compose.validate(
            from_name=smtp.from_name,
            from_email=smtp.from_email,
            to=outgoing.to,
            cc=outgoing.cc,
            bcc=outgoing.bcc,
            subject=outgoing.subject,
            body=outgoing.body,
            in_reply_to=outgoing.in_reply_to,
            references=outgoing.references,
            attachments=[(a.filename, a.content_type, bytes(a.data)) for a in outgoing.attachments.all()],
            max_recipients=settings.WEBPOP_SEND_MAX_RECIPIENTS,
        )
        now = timezone.now()
        message_id = compose.new_message_id(draft.from_email)
        raw = compose.build(draft, message_id=message_id, date=timezone.localtime(now))
        if len(raw) > settings.WEBPOP_MAX_SEND_BYTES:
            raise SendRefused(
                _("The message is %(size)s bytes; at most %(limit)s bytes can be sent.")
                % {"size": f"{len(raw):,}", "limit": f"{settings.WEBPOP_MAX_SEND_BYTES:,}"}
            )
        OutgoingMessage.objects.filter(id=outgoing.id).update(
            state=OutgoingState.QUEUED,
            raw=raw,
            message_id=message_id,
            queued_at=now,
            updated_at=now,
            attempts=0,
            error="",
            error_class="",
            claimed_at=None,
        )
        transaction.on_commit(lambda: _enqueue(outgoing.id))
    outgoing.refresh_from_db()
    return outgoing


def _enqueue(outgoing_id: int) -> None:
    from . import tasks

    tasks.send_outgoing.delay(outgoing_id)


# --- Delivery -----------------------------------------------------------------------------


def credentials(account: MailAccount, smtp: SmtpSettings) -> Credentials:
    if smtp.auth == SmtpAuth.SEPARATE:
        return Credentials(smtp.username, smtp.get_password())
    if smtp.auth == SmtpAuth.OAUTH2:
        return Credentials(smtp.username or account.username, oauth_token=oauth_access_token(account))
    return Credentials(account.username, account.get_password())


def oauth_access_token(account: MailAccount) -> str:
    """The account's current OAuth2 access token (refreshed when due, see oauth/tokens.py)."""
    from oauth.tokens import ReconnectRequired, TokenUnavailable, access_token_for

    try:
        return access_token_for(account)
    except ReconnectRequired as exc:  # revoked or expired grant: only the user can fix it
        raise SmtpPermanentError(
            _("The sign-in with the provider has expired; reconnect the account. (%(error)s)") % {"error": exc}
        ) from None
    except TokenUnavailable as exc:  # the provider did not answer: try again later
        raise SmtpTemporaryError(
            _("The provider could not renew the sign-in just now. (%(error)s)") % {"error": exc}
        ) from None


def client_for(smtp: SmtpSettings) -> SmtpClient:
    return SmtpClient(
        smtp.host,
        smtp.port,
        smtp.security,
        timeout=settings.WEBPOP_SMTP_TIMEOUT,
        ca_file=settings.WEBPOP_POP3_CA_FILE,
        allow_private=settings.WEBPOP_POP3_ALLOW_PRIVATE,
    )


def _claim(outgoing_id: int) -> bool:
    now = timezone.now()
    claimable = Q(state=OutgoingState.QUEUED) | Q(state=OutgoingState.SENDING, claimed_at__lt=now - CLAIM_LEASE)
    return bool(
        OutgoingMessage.objects.filter(claimable, id=outgoing_id).update(
            state=OutgoingState.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    )


def deliver(outgoing_id: int) -> Outcome:
    """Send one queued message (exactly one caller wins the claim) and file it in Sent."""
    if not _claim(outgoing_id):
        return Outcome.SKIPPED
    outgoing = OutgoingMessage.objects.select_related("account").get(id=outgoing_id)
    try:
        smtp = _settings_of(outgoing.account)
        if smtp is None:
            raise SmtpPermanentError(_("Sending is not set up for this account any more."))
        recipients = [
            m.address
            for field in (outgoing.to, outgoing.cc, outgoing.bcc)
            for m in compose.parse_recipients(field, "to")
        ]
        recipients = list(dict.fromkeys(recipients))
        with client_for(smtp) as client:
            client.login(credentials(outgoing.account, smtp))
            result = client.send(smtp.from_email, recipients, bytes(outgoing.raw))
    except SmtpError as exc:
        return _failed(outgoing, exc)
    except DecryptionError:
        return _failed(outgoing, SmtpPermanentError(_("The stored password cannot be read; enter it again.")))
    except compose.ComposeError as exc:  # validated when queued; only a bug gets here
        return _failed(outgoing, SmtpPermanentError(str(exc)))
    note = ""
    if result.refused:
        note = _("Not delivered to: %(list)s") % {
            "list": "; ".join(f"{rcpt} ({answer})" for rcpt, (_code, answer) in result.refused.items())
        }
    try:
        file_sent(outgoing, note)
    except Exception:
        # The server has it: never send it again. The bytes stay on this row for the Outbox.
        log.exception("sent but not filed in Sent outgoing=%s", outgoing.id)
        OutgoingMessage.objects.filter(id=outgoing.id, state=OutgoingState.SENDING).update(
            state=OutgoingState.SENT,
            sent_at=timezone.now(),
            updated_at=timezone.now(),
            claimed_at=None,
            error_class="not_filed",
            error=_("Sent, but the copy could not be filed in Sent."),
        )
    return Outcome.SENT


def _failed(outgoing: OutgoingMessage, exc: SmtpError) -> Outcome:
    error = str(exc)[:2000]
    log.info("send failed outgoing=%s class=%s temporary=%s", outgoing.id, exc.error_class, exc.temporary)
    state = OutgoingState.QUEUED if exc.temporary else OutgoingState.FAILED
    OutgoingMessage.objects.filter(id=outgoing.id, state=OutgoingState.SENDING).update(
        state=state, error=error, error_class=exc.error_class, claimed_at=None, updated_at=timezone.now()
    )
    return Outcome.RETRY if exc.temporary else Outcome.FAILED


@transaction.atomic
def give_up(outgoing_id: int) -> bool:
    """After the last retry: a message still waiting goes to the Outbox with its last error."""
    return bool(
        OutgoingMessage.objects.filter(id=outgoing_id, state=OutgoingState.QUEUED).update(
            state=OutgoingState.FAILED, updated_at=timezone.now()
        )
    )


@transaction.atomic
def resume_stalled(now: dt.datetime | None = None) -> list[int]:
    """Queued messages whose task was lost, and claims of workers that died: queued again (ids to enqueue).

    Sending twice is prevented by the claim, so enqueueing one that is in fact still waiting is harmless.
    """
    now = now or timezone.now()
    stalled = Q(state=OutgoingState.QUEUED, updated_at__lt=now - STALE_AFTER) | Q(
        state=OutgoingState.SENDING, claimed_at__lt=now - CLAIM_LEASE
    )
    rows = OutgoingMessage.objects.filter(stalled)
    rows.filter(attempts__gte=MAX_ATTEMPTS).update(state=OutgoingState.FAILED, claimed_at=None, updated_at=now)
    ids = list(rows.filter(attempts__lt=MAX_ATTEMPTS).values_list("id", flat=True)[:500])
    OutgoingMessage.objects.filter(stalled, id__in=ids).update(
        state=OutgoingState.QUEUED, claimed_at=None, updated_at=now
    )
    return ids


def sent_uidl(outgoing: OutgoingMessage) -> str:
    # A space: RFC 1939 UIDLs are printable characters without spaces, so no server's can equal it.
    return f"webpop sent {outgoing.id}"


def file_sent(outgoing: OutgoingMessage, note: str = "") -> Message:
    """Store what was sent in Sent (byte-exact, plus Bcc) and mark the outgoing message sent."""
    bcc = compose.parse_recipients(outgoing.bcc, "bcc")
    data = compose.with_bcc(bytes(outgoing.raw), bcc)
    with store.temp_file() as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    stored = store.commit_raw(Path(fh.name), expected_size=len(data), expected_sha256=hashlib.sha256(data).hexdigest())
    parsed = mime.parse_bytes(data)
    now = timezone.now()
    with transaction.atomic():
        message = store.save_message(outgoing.account, sent_uidl(outgoing), stored, parsed)
        assert message is not None  # its UIDL is this message's own
        Message.objects.filter(id=message.id).update(folder=Folder.SENT, server_state=ServerState.GONE, seen=True)
        message.folder, message.server_state, message.seen = Folder.SENT, ServerState.GONE, True
        OutgoingMessage.objects.filter(id=outgoing.id).update(
            state=OutgoingState.SENT,
            sent_at=now,
            updated_at=now,
            raw=None,
            sent_message=message,
            error=note,
            error_class="partial" if note else "",
            claimed_at=None,
        )
        OutgoingAttachment.objects.filter(message=outgoing).delete()  # the Sent copy holds them now
    try:
        threads.assign([message])
    except Exception:  # conversations are a convenience: the message is stored
        log.exception("threading failed after send outgoing=%s", outgoing.id)
    return message
