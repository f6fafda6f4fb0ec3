"""Unsubscribing from the list a message came from: what it offers, the reader's request, its life.

* ``offer`` reads what the message offers (``mailbox/list_headers.py``). Ingest stores it on
  the message; messages stored before that was read get it from their raw header block here,
  on first view (at most ``mime.MAX_HEADER_BYTES`` read), and keep it, so no migration has
  to read every stored file.
* ``start`` records the reader's confirmed request, one per message. One-click: a pending
  row, published to Celery after commit. By e-mail: an outgoing message built and queued
  with the existing send path (outgoing/send.py), so it is sent from the account's SMTP
  server, retried like any send and filed in Sent.
* ``run`` (the task; ``unsubscribe/tries.py``) claims a pending row with a conditional UPDATE, POSTs
  (``unsubscribe/oneclick.py``) and records the answer; a temporary failure waits on the row
  for its next try. ``due`` (beat, every tick) finds work whose task was lost or whose
  worker died, from the rows alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from mailbox import list_headers, mime, store
from mailbox.models import Folder, Message
from outgoing import actions as outgoing_actions
from outgoing import compose, send
from outgoing.models import OutgoingState, SmtpSettings
from webpop.lib import pagecache

from . import oneclick, tasks
from .models import UnsubscribeRequest
from .tries import CLAIM_LEASE, MAX_ATTEMPTS, REDISPATCH_AFTER, RETRY_AFTER, due, run  # noqa: F401  (callers' names)

Method = UnsubscribeRequest.Method
State = UnsubscribeRequest.State

ACTIVE = (State.PENDING, State.RUNNING)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


class Refused(Exception):
    """The request cannot be made; the text says why, for the reader."""


# --- What a message offers ----------------------------------------------------------------


def _from_raw(message: Message) -> dict | None:
    """Read from the stored header block; None when the stored file cannot be read now."""
    try:
        with store.open_file(message.raw_path) as fh:
            head = fh.read(mime.MAX_HEADER_BYTES)
    except (OSError, ValueError):
        return None
    blank = _BLANK_LINE.search(head)
    parsed = mime.parse_bytes(head[: blank.end()] if blank else head)
    return list_headers.parse(parsed.list_unsubscribe, parsed.list_unsubscribe_post, parsed.list_id).as_json()


def offer(message: Message) -> list_headers.Unsubscribe:
    if message.list_unsubscribe is None and message.raw_path:
        data = _from_raw(message)
        if data is not None:
            Message.objects.filter(id=message.id, list_unsubscribe__isnull=True).update(list_unsubscribe=data)
            message.list_unsubscribe = data
    return list_headers.Unsubscribe.from_json(message.list_unsubscribe)


def can_send(message: Message) -> bool:
    return SmtpSettings.objects.filter(account_id=message.account_id).exists()


# --- The reader's request -----------------------------------------------------------------


def in_progress(request: UnsubscribeRequest) -> bool:
    if request.method == Method.MAILTO:
        return request.outgoing is not None and request.outgoing.state in send.IN_FLIGHT
    return request.state in ACTIVE


def settled(request: UnsubscribeRequest) -> bool:
    """Done, or on its way: asking again would only repeat it."""
    if request.method == Method.MAILTO:
        return request.outgoing is not None and request.outgoing.state in (*send.IN_FLIGHT, OutgoingState.SENT)
    return request.state in (*ACTIVE, State.DONE)


def start(owner, message_id: int, method: str) -> UnsubscribeRequest:
    """Record the reader's confirmed request and set it going; raises Message.DoesNotExist or Refused."""
    try:
        with transaction.atomic():
            return _start(owner, message_id, method)
    except IntegrityError:  # a request for this message was recorded meanwhile (two tabs): that one stands
        return UnsubscribeRequest.objects.select_related("outgoing").get(message_id=message_id, owner=owner)


def _start(owner, message_id: int, method: str) -> UnsubscribeRequest:
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("account")
        .exclude(folder=Folder.PURGED)
        .get(id=message_id, owner=owner)
    )
    request = (
        UnsubscribeRequest.objects.select_for_update(of=("self",))
        .select_related("outgoing")
        .filter(message=message)
        .first()
    )
    if request is not None and settled(request):
        return request
    offered = offer(message)
    now = timezone.now()
    if request is None:
        request = UnsubscribeRequest(owner=owner, message=message, created_at=now)
    request.updated_at, request.finished_at = now, None
    request.attempts, request.status_code, request.error, request.error_class = 0, None, "", ""
    request.claimed_at, request.outgoing = None, None
    if method == Method.ONE_CLICK:
        if not offered.one_click:
            raise Refused(_("This message does not offer one-click unsubscribe."))
        request.method, request.target, request.state = Method.ONE_CLICK, offered.https, State.PENDING
        request.not_before = request.enqueued_at = now  # published below; should that be lost, the sweep does
        request.save()
        pagecache.touch_message_pages([owner.pk])  # the conversation page shows its progress
        request_id = request.id
        transaction.on_commit(lambda: _enqueue(request_id))
        return request
    if method == Method.MAILTO:
        if offered.mailto is None:
            raise Refused(_("This message does not offer to unsubscribe by e-mail."))
        if not can_send(message):
            raise Refused(
                _("Sending is not set up for %(account)s, so webpop cannot send the e-mail for you.")
                % {"account": message.account.display_name}
            )
        mailto = offered.mailto
        try:
            outgoing = send.save_draft(
                owner, None, account=message.account, to=mailto.address, subject=mailto.subject, body=mailto.body
            )
            # Confirmed on its own page already: no Undo window (nothing offers an Undo for it).
            outgoing = outgoing_actions.queue(owner, outgoing.id, delay=0)
        except (compose.ComposeError, send.SendRefused) as exc:
            raise Refused(str(exc)) from None
        request.method, request.target, request.state = Method.MAILTO, mailto.address, State.MAILED
        request.outgoing, request.enqueued_at = outgoing, None
        request.save()
        pagecache.touch_message_pages([owner.pk])  # the conversation page shows its progress
        return request
    raise Refused(_("Unknown way to unsubscribe."))


def _enqueue(request_id: int) -> None:
    tasks.unsubscribe.delay(request_id)


# --- What the reader sees --------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    kind: str  # "working", "done" or "failed"
    headline: str
    detail: str = ""
    outbox: bool = False  # the e-mail waits in the Outbox or Drafts: link there


def status(request: UnsubscribeRequest) -> Status:
    if request.method == Method.MAILTO:
        return _mail_status(request)
    if request.state in ACTIVE:
        detail = _("webpop is asking the list's server to unsubscribe you.")
        if request.error_class == "temporary":
            detail = _("The list's server did not answer (%(error)s); webpop tries again at %(time)s.") % {
                "error": request.error,
                "time": formats.time_format(timezone.localtime(request.not_before)),
            }
        return Status("working", _("Unsubscribing…"), detail)
    if request.state == State.DONE:
        return Status("done", _("Unsubscribed"), _("The list's server accepted your request."))
    return Status("failed", _("Unsubscribing did not work"), _failure(request))


def _failure(request: UnsubscribeRequest) -> str:
    kind = request.error_class
    if kind == oneclick.Outcome.REFUSED.value:
        return _("The sender's server refused: %(answer)s") % {"answer": request.error}
    if kind == oneclick.Outcome.REDIRECT.value:
        return _(
            "The sender's server answered with a redirect (%(answer)s) instead of confirming; "
            "webpop does not follow redirects for this request."
        ) % {"answer": request.error}
    if kind == oneclick.Outcome.NOT_ALLOWED.value:
        return _(
            "The unsubscribe link points to a private or reserved network address (%(detail)s); "
            "webpop does not connect there."
        ) % {"detail": request.error}
    if kind == oneclick.Outcome.TLS.value:
        return _("The certificate of the sender's server could not be verified: %(detail)s") % {"detail": request.error}
    if kind == "stopped":
        return _("The request was interrupted too many times.")
    if kind == oneclick.Outcome.BAD_URL.value:
        return _("The unsubscribe link cannot be used: %(detail)s") % {"detail": request.error}
    return _("The sender's server could not be reached: %(detail)s") % {"detail": request.error}


def _mail_status(request: UnsubscribeRequest) -> Status:
    outgoing = request.outgoing
    address = request.target
    if outgoing is None:
        return Status("failed", _("Unsubscribing did not work"), _("The unsubscribe e-mail was discarded."))
    if outgoing.state in send.IN_FLIGHT:
        return Status(
            "working", _("Unsubscribing…"), _("Sending the unsubscribe e-mail to %(address)s.") % {"address": address}
        )
    if outgoing.state == OutgoingState.SENT:
        return Status(
            "done", _("Unsubscribed"), _("The unsubscribe e-mail to %(address)s was sent.") % {"address": address}
        )
    if outgoing.state == OutgoingState.DRAFT:
        return Status(
            "failed", _("Unsubscribing did not work"), _("The unsubscribe e-mail is in your drafts."), outbox=True
        )
    return Status(
        "failed",
        _("Unsubscribing did not work"),
        _("The unsubscribe e-mail could not be sent: %(error)s") % {"error": outgoing.error},
        outbox=True,
    )
