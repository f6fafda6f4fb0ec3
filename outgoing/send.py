"""The life of an outgoing message: draft → queued → sending → sent, or failed (the Outbox).

* Drafts are edited only while they are drafts (or failed): every write is a
  conditional UPDATE on the state, so an autosave racing a send changes nothing.
* :func:`queue` checks the rate limit, validates every field, builds the bytes
  once (Message-ID, Date) and hands the id to Celery after commit.
* :func:`deliver` claims a queued message with a conditional UPDATE (one worker
  sends it), sends it, and files the exact bytes in Sent through the mail store
  (server state "gone" and a UIDL with a space, which no POP3 server can use:
  sync never fetches, reconciles or deletes it). A temporary failure puts it
  back in the queue with the time of its next try on the row; a permanent one
  (or the last try) lands in the Outbox with the server's answer.
* :func:`dispatch_due` (beat, every tick) finds the messages whose try is due
  and whose task is not on its way, from their rows: a retry never waits in the
  broker, and a lost task (or a worker that died while sending) delays a
  message but never loses it.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import os
import random
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.crypto import DecryptionError
from accounts.models import DEFAULT_UNDO_SEND_SECONDS, MailAccount, Profile
from contacts import actions as contacts_actions
from mailbox import mime, store, threads
from mailbox.models import Folder, Message, ServerState
from unsubscribe.models import UnsubscribeRequest
from webpop.lib import pagecache

from . import compose, forwarded, identities, rich, text
from .models import Identity, OutgoingAttachment, OutgoingMessage, OutgoingState, SmtpAuth, SmtpSettings
from .smtp import Credentials, SmtpClient, SmtpError, SmtpPermanentError, SmtpTemporaryError

log = logging.getLogger(__name__)

EDITABLE = (OutgoingState.DRAFT, OutgoingState.FAILED)
IN_FLIGHT = (OutgoingState.QUEUED, OutgoingState.SENDING)
# A worker that died while sending leaves its claim; after this long another may send it.
CLAIM_LEASE = dt.timedelta(minutes=30)
# A task published for a due message that has not started after this long counts as lost and is
# published again (should the first turn up after all, it finds the message claimed or sent).
REDISPATCH_AFTER = dt.timedelta(seconds=settings.WEBPOP_SEND_REDISPATCH_SECONDS)
MAX_ATTEMPTS = 9  # the first try and eight retries (about three hours with the backoff below): then the Outbox


def backoff(retries: int) -> int:
    """Seconds before retry ``retries + 1``: 1, 2, 4 … 60 minutes, with jitter so retries do not bunch up."""
    base = min(60 * 2**retries, 3600)
    return base + random.randint(0, base // 4)


class SendRefused(ValueError):
    """The message cannot be queued or changed now (rate limit, size, state); nothing was lost."""


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"  # temporary failure: back in the queue
    FAILED = "failed"  # permanent failure: in the Outbox
    SKIPPED = "skipped"  # not queued (already sent, being sent, discarded, or taken back with Undo)
    EARLY = "early"  # queued, but its time has not come (the task arrived before the end of the Undo window)


# --- Identity and limits ------------------------------------------------------------


def own_addresses(user) -> set[str]:
    """Every address the user sends or receives as, lower case: never a reply's recipient."""
    found = {user.email.lower()} if user.email else set()
    for username, from_email in MailAccount.objects.filter(owner=user).values_list("username", "smtp__from_email"):
        for address in (username, from_email):
            if address and "@" in address:
                found.add(address.lower())
    found.update(a.lower() for a in Identity.objects.filter(account__owner=user).values_list("address", flat=True))
    return found


def undo_seconds(user_id: int) -> int:
    """How long the user's sent messages wait, with an Undo, before they leave (Preferences)."""
    seconds = Profile.objects.filter(user_id=user_id).values_list("undo_send_seconds", flat=True).first()
    return DEFAULT_UNDO_SEND_SECONDS if seconds is None else seconds


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
    body_html: str | None = None,
    add: list[tuple[str, str, bytes]] = (),
    remove: list[int] = (),
    compose_key: str = "",
    identity: Identity | None = None,
) -> OutgoingMessage:
    """Create or update a draft (a failed message becomes a draft again when edited).

    A new message's ``compose_key`` (from its editor page) finds the row an earlier save of the same page
    made, so an autosave and a Send that cross each other leave one message, not a draft behind.

    The subject is kept as one line, file names and types as they will be sent; addresses and
    the body as typed (checked when sent), only without what no database stores (NUL, surrogates).
    ``body_html`` (rich text; None: plain) is kept clean (``rich.stored_html``), and ``body`` becomes its text.
    """
    if account.owner_id != owner.id or (identity is not None and identity.account_id != account.id):
        raise SendRefused(_("Unknown account."))
    add = [(compose.file_name(name), compose.media_type(ctype), data) for name, ctype, data in add]
    _attachment_budget(outgoing, add, remove)
    fields = {
        "account": account,
        "identity": identity,
        "to": text.storable(to),
        "cc": text.storable(cc),
        "bcc": text.storable(bcc),
        "subject": text.one_line(subject),
        "body": text.storable(body),
        "body_html": "",
    }
    now = timezone.now()
    if outgoing is None and compose_key:
        lock_owner(owner)  # two saves of one page at once: the second finds the first's row
        outgoing = OutgoingMessage.objects.filter(owner=owner, compose_key=compose_key).first()
    if body_html:
        fields["body_html"] = rich.stored_html(outgoing, text.storable(body_html))
        fields["body"] = rich.text_of(outgoing, fields["body_html"])
    if outgoing is None:
        outgoing = OutgoingMessage.objects.create(
            owner=owner, created_at=now, updated_at=now, compose_key=compose_key, **fields
        )
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


def lock_owner(owner) -> None:
    """Serialise this user's draft creation and queueing (the user's row, locked to the end of the transaction)."""
    get_user_model().objects.select_for_update().filter(id=owner.id).first()


def settings_of(account: MailAccount) -> SmtpSettings | None:
    return SmtpSettings.objects.filter(account=account).first()


def reply_draft(owner, message_id: int, kind: str) -> OutgoingMessage | None:
    """The draft already answering (or forwarding) this message this way, if any."""
    rows = OutgoingMessage.objects.filter(owner=owner, source_id=message_id, kind=kind, state=OutgoingState.DRAFT)
    return rows.order_by("id").first()


@transaction.atomic
def start_reply(owner, message: Message, kind: str) -> OutgoingMessage:
    """The draft answering or forwarding ``message`` (the caller checked it is the owner's).

    One per (message, kind): Reply pressed again, a reload or a second tab reopen the draft being written.
    """
    lock_owner(owner)
    existing = reply_draft(owner, message.id, kind)
    if existing is not None:
        return existing
    original = compose.original_of(message)
    account = message.account
    # Sent as the address it came to (any account's that can send), else the account's main identity.
    identity = identities.for_reply(identities.of_user(owner), original, account)
    if identity is not None:
        account = identity.account
    smtp = settings_of(account)
    if smtp is None:  # the account it came to cannot send: answer from one that can, if any
        others = sendable_accounts(owner)
        if others:
            account, smtp = others[0], others[0].smtp
    signature, placement = identities.signature_text(identity, smtp), identities.placement(identity)
    now = timezone.now()
    outgoing = OutgoingMessage(
        owner=owner, account=account, identity=identity, kind=kind, source=message, created_at=now, updated_at=now
    )
    if kind == OutgoingMessage.Kind.FORWARD:
        outgoing.subject = compose.forward_subject(original.subject)
        outgoing.body = compose.forward_body(original, signature, placement)
        # Forwarding keeps the conversation together (as Gmail does) without claiming to answer.
        outgoing.references = compose.threading_headers(original)[1]
    else:
        to, cc = compose.reply_recipients(
            original, own_addresses(owner), reply_all=kind == OutgoingMessage.Kind.REPLY_ALL
        )
        outgoing.to, outgoing.cc = compose.format_mailboxes(to), compose.format_mailboxes(cc)
        outgoing.subject = compose.reply_subject(original.subject)
        outgoing.body = compose.reply_body(original, signature, placement)
        outgoing.in_reply_to, outgoing.references = compose.threading_headers(original)
    parts = forwarded.parts_of(message) if kind == OutgoingMessage.Kind.FORWARD else []
    pictures = forwarded.new_content_ids(parts, smtp.from_email if smtp else "")
    if rich.preferred_format(owner.id) == "rich":
        rich.start_reply(outgoing, original, identity, signature, placement, pictures)
    outgoing.save()
    if parts:
        copies = forwarded.copies(outgoing, parts, pictures)
        _attachment_budget(outgoing, [(row.filename, row.content_type, row.data) for row in copies])
        OutgoingAttachment.objects.bulk_create(copies)
    return outgoing


@transaction.atomic
def discard(owner, outgoing_id: int) -> bool:
    """Delete a draft or a failed message (never one being sent)."""
    deleted, _counts = OutgoingMessage.objects.filter(id=outgoing_id, owner=owner, state__in=EDITABLE).delete()
    return bool(deleted)


# --- Queueing ---------------------------------------------------------------------------


def draft_of(outgoing: OutgoingMessage, smtp: SmtpSettings) -> compose.Draft:
    """The checked, normalised draft of a stored message, sent as its identity (none: ``smtp``'s From).

    Raises ``compose.ComposeError``: a draft saved by an earlier version is checked again here.
    """
    identity = None  # the main identity is the SMTP settings' From (its Identity row mirrors it)
    if outgoing.identity_id is not None:
        rows = Identity.objects.filter(id=outgoing.identity_id, account_id=outgoing.account_id, is_default=False)
        identity = rows.first()
    html, body, pictures = rich.sendable(outgoing) if outgoing.body_html else ("", outgoing.body, [])
    return compose.validate(
        from_name=identity.name if identity else smtp.from_name,
        from_email=identity.address if identity else smtp.from_email,
        to=outgoing.to,
        cc=outgoing.cc,
        bcc=outgoing.bcc,
        subject=outgoing.subject,
        body=body,
        html=html,
        inline=pictures,
        in_reply_to=outgoing.in_reply_to,
        references=outgoing.references,
        attachments=[(a.filename, a.content_type, bytes(a.data)) for a in outgoing.attachments.filter(content_id="")],
        max_recipients=settings.WEBPOP_SEND_MAX_RECIPIENTS,
    )


def seconds_left(outgoing_id: int) -> float | None:
    """Seconds left of a queued message's Undo window, or None when it is not in one.

    Only the first try: a retry's wait stays on the row (beat's sweep publishes it when due).
    """
    due = (
        OutgoingMessage.objects.filter(id=outgoing_id, state=OutgoingState.QUEUED, attempts=0)
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if due is None:
        return None
    left = (due - timezone.now()).total_seconds()
    return left if left > 0 else None


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


def touch_unsubscribe_pages(outgoing_ids: Iterable[int]) -> None:
    """These messages changed state: the conversation pages of unsubscribes sent by e-mail with them show it.

    Only those (one indexed query): an ordinary send leaves every kept page as it is. Call it in the
    transaction that changes the state (outside one, after the change).
    """
    ids = list(outgoing_ids)
    if ids:
        owners = UnsubscribeRequest.objects.filter(outgoing_id__in=ids).values_list("owner_id", flat=True)
        pagecache.touch_message_pages(set(owners))


def _claim(outgoing_id: int) -> bool:
    """Take the message for sending with a conditional UPDATE: exactly one caller wins, and only once it is due."""
    now = timezone.now()
    claimable = Q(state=OutgoingState.QUEUED, next_attempt_at__lte=now) | Q(
        state=OutgoingState.SENDING, claimed_at__lt=now - CLAIM_LEASE
    )
    return bool(
        OutgoingMessage.objects.filter(claimable, id=outgoing_id, attempts__lt=MAX_ATTEMPTS).update(
            state=OutgoingState.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    )


def deliver(outgoing_id: int) -> Outcome:
    """Send one queued message (exactly one caller wins the claim) and file it in Sent."""
    if not _claim(outgoing_id):
        return Outcome.EARLY if seconds_left(outgoing_id) else Outcome.SKIPPED
    outgoing = OutgoingMessage.objects.select_related("account").get(id=outgoing_id)
    try:
        smtp = settings_of(outgoing.account)
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
        if OutgoingMessage.objects.filter(id=outgoing.id, state=OutgoingState.SENDING).update(
            state=OutgoingState.SENT,
            sent_at=timezone.now(),
            updated_at=timezone.now(),
            claimed_at=None,
            error_class="not_filed",
            error=_("Sent, but the copy could not be filed in Sent."),
        ):
            touch_unsubscribe_pages([outgoing.id])  # filed, it was store.save_message's touch
    contacts_actions.record_sent(outgoing)  # ranks the recipients in the address book; never raises
    return Outcome.SENT


def _failed(outgoing: OutgoingMessage, exc: SmtpError) -> Outcome:
    error = str(exc)[:2000]
    log.info("send failed outgoing=%s class=%s temporary=%s", outgoing.id, exc.error_class, exc.temporary)
    now = timezone.now()
    retry = exc.temporary and outgoing.attempts < MAX_ATTEMPTS  # else the last try's answer goes to the Outbox
    if OutgoingMessage.objects.filter(id=outgoing.id, state=OutgoingState.SENDING).update(
        state=OutgoingState.QUEUED if retry else OutgoingState.FAILED,
        next_attempt_at=now + dt.timedelta(seconds=backoff(outgoing.attempts - 1)) if retry else None,
        error=error,
        error_class=exc.error_class,
        claimed_at=None,
        updated_at=now,
    ):
        touch_unsubscribe_pages([outgoing.id])  # an unsubscribe's e-mail that failed: its page says so
    return Outcome.RETRY if retry else Outcome.FAILED


@transaction.atomic
def give_up(outgoing_id: int) -> bool:
    """A message still waiting goes to the Outbox with its last error."""
    given_up = OutgoingMessage.objects.filter(id=outgoing_id, state=OutgoingState.QUEUED).update(
        state=OutgoingState.FAILED, next_attempt_at=None, updated_at=timezone.now()
    )
    if given_up:
        touch_unsubscribe_pages([outgoing_id])
    return bool(given_up)


@transaction.atomic
def dispatch_due(now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """The ids of messages to publish a task for now; each is claimed for that with a conditional UPDATE.

    Due: queued, its try's time has come, and no task was published for this try (or that one is overdue:
    lost). Claims of workers that died while sending go back to the queue first. Two beats never publish
    the same try, and a task that does turn up twice finds the message claimed (``deliver``), so nothing
    is sent twice.
    """
    now = now or timezone.now()
    dead = Q(state=OutgoingState.SENDING, claimed_at__lt=now - CLAIM_LEASE)
    # Out of tries (a worker died during the last one; or queued under a higher limit): the Outbox. Read
    # first (as the update would, so an idle tick costs no more): an unsubscribe's page shows it.
    out_of_tries = Q(dead | Q(state=OutgoingState.QUEUED), attempts__gte=MAX_ATTEMPTS)
    failing = list(OutgoingMessage.objects.filter(out_of_tries).values_list("id", flat=True))
    if failing:
        OutgoingMessage.objects.filter(out_of_tries, id__in=failing).update(
            state=OutgoingState.FAILED, claimed_at=None, next_attempt_at=None, updated_at=now
        )
        touch_unsubscribe_pages(failing)
    # Sending again (queued): an unsubscribe's page shows "Unsubscribing…" for both, so nothing it shows changes.
    OutgoingMessage.objects.filter(dead).update(
        state=OutgoingState.QUEUED, claimed_at=None, next_attempt_at=now, updated_at=now
    )
    not_on_its_way = (
        Q(enqueued_at__isnull=True)
        | Q(enqueued_at__lt=F("next_attempt_at"))  # published for an earlier try
        | Q(enqueued_at__lt=now - REDISPATCH_AFTER)
    )
    due = Q(state=OutgoingState.QUEUED, next_attempt_at__lte=now) & not_on_its_way
    candidates = OutgoingMessage.objects.filter(due).order_by("next_attempt_at").values_list("id", flat=True)
    return [
        outgoing_id
        for outgoing_id in list(candidates[:limit])
        if OutgoingMessage.objects.filter(due, id=outgoing_id).update(enqueued_at=now) == 1
    ]


def sent_uidl(outgoing: OutgoingMessage) -> str:
    # A space: RFC 1939 UIDLs are printable characters without spaces, so no server's can equal it.
    return f"webpop sent {outgoing.id}"


def file_sent(outgoing: OutgoingMessage, note: str = "") -> Message:
    """Store what was sent in Sent (byte-exact, plus Bcc) and mark the outgoing message sent."""
    bcc = compose.parse_recipients(outgoing.bcc, "bcc")
    data = compose.with_bcc(bytes(outgoing.raw), bcc)
    fh = store.temp_file()
    try:
        with fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        stored = store.commit_raw(
            Path(fh.name), expected_size=len(data), expected_sha256=hashlib.sha256(data).hexdigest()
        )
    finally:
        Path(fh.name).unlink(missing_ok=True)  # moved into the store, or (a full disk) never left in the spool
    parsed = mime.parse_bytes(data)
    now = timezone.now()
    with transaction.atomic():
        message = store.save_message(outgoing.account, sent_uidl(outgoing), stored, parsed)
        assert message is not None  # its UIDL is this message's own
        # In save_message's transaction: its page-cache touch at commit covers this too.
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
