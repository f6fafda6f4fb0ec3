"""Queueing a message that webpop wrote for the user (an invitation's answer): no draft, same delivery.

The bytes are built by the caller; the row goes straight to "queued" with them, so
``send.deliver`` sends it, retries it from the row and files it in Sent like any other
message, and beat's ``dispatch_due`` finds it again should its task be lost.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import MailAccount
from mailbox.models import Message

from . import send, tasks
from .models import OutgoingMessage, OutgoingState


def queue_generated(
    owner, account: MailAccount, *, to: str, subject: str, raw: bytes, message_id: str, source: Message | None = None
) -> OutgoingMessage:
    """Queue ``raw`` for sending through ``account``; call inside the caller's transaction.

    Raises ``send.SendRefused`` over the hourly limit or the size limit. Celery gets it after commit.
    """
    if len(raw) > settings.WEBPOP_MAX_SEND_BYTES:
        raise send.SendRefused(_("The message is too large to be sent."))
    with transaction.atomic():
        # As ``actions.queue``: one queue at a time per user, so the rate limit holds across tabs.
        get_user_model().objects.select_for_update().filter(id=owner.id).first()
        limit = send.limit_per_hour(owner.id)
        if send.sent_in_last_hour(owner.id) >= limit:
            raise send.SendRefused(_("You have reached the limit of %(n)d messages per hour.") % {"n": limit})
        now = timezone.now()
        outgoing = OutgoingMessage.objects.create(
            owner=owner,
            account=account,
            state=OutgoingState.QUEUED,
            to=to,
            subject=subject,
            source=source,
            message_id=message_id,
            raw=raw,
            queued_at=now,
            updated_at=now,
            next_attempt_at=now,
            enqueued_at=now,  # published below; should that be lost, beat's sweep publishes it again
        )
        transaction.on_commit(lambda: tasks.publish_send(outgoing.id))
    return outgoing
