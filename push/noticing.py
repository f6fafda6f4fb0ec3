"""Noticing new mail for notifications: what counts as new, and marking each subscription due.

The work the push tasks run (push/tasks.py calls it and publishes the deliveries); push/actions.py
publishes those tasks. This module publishes nothing, so the arrows go one way:
actions -> tasks -> noticing, delivery.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, QuerySet
from django.utils import timezone

from mailbox.models import Folder, Message
from spam.models import PendingScan

from .models import PushSettings, PushSubscription


def push_enabled() -> bool:
    """Web Push is on when the server has VAPID keys (settings.py checked them)."""
    return bool(settings.WEBPOP_VAPID_PRIVATE_KEY and settings.WEBPOP_VAPID_PUBLIC_KEY)


def new_inbox_mail(owner_id: int) -> QuerySet:
    """Unread Inbox mail that could be new: fetched mail, not messages imported from files, and
    not mail still waiting for its spam scan (the scan may file it as Spam; the sweep that judges
    it looks for new mail then).

    (Imports store their messages under UIDLs beginning "import:", mailbox/importer.py.)
    """
    return (
        Message.objects.filter(owner_id=owner_id, folder=Folder.INBOX, seen=False)
        .exclude(uidl__startswith="import:")
        .exclude(Exists(PendingScan.objects.filter(message_id=OuterRef("pk"))))
    )


def settings_for(owner_id: int) -> PushSettings:
    return PushSettings.objects.filter(user_id=owner_id).first() or PushSettings(user_id=owner_id)


@transaction.atomic
def notice_new_mail(owner_id: int) -> list[int]:
    """Mark a notification due on each of the owner's subscriptions when unread Inbox mail is new.

    Returns the ids of the subscriptions now due (none when no mail is new, or another worker
    noticed the same mail first); the caller publishes their deliveries after commit.
    """
    state = PushSettings.objects.filter(user_id=owner_id).first()
    if state is None or not push_enabled():
        return []
    newest = new_inbox_mail(owner_id).filter(id__gt=state.notified_up_to).aggregate(newest=Max("id"))["newest"]
    if newest is None:
        return []
    # A conditional update: of two workers that saw the same mail, one goes on.
    taken = PushSettings.objects.filter(user_id=owner_id, notified_up_to=state.notified_up_to).update(
        notified_up_to=newest
    )
    if taken != 1:
        return []
    now = timezone.now()
    due = PushSubscription.objects.filter(owner_id=owner_id, vapid_public=settings.WEBPOP_VAPID_PUBLIC_KEY)
    due.update(due_at=now, attempts=0, enqueued_at=now)
    ids = list(due.values_list("id", flat=True))
    return ids


def owners_with_new_mail(limit: int = 1000) -> list[int]:
    """Owners with a subscription and unread Inbox mail newer than their last notification (the sweep's part)."""
    if not push_enabled():
        return []
    newer = new_inbox_mail(OuterRef("user_id")).filter(id__gt=OuterRef("notified_up_to"))
    subscribed = PushSubscription.objects.filter(owner_id=OuterRef("user_id"))
    return list(
        PushSettings.objects.filter(Exists(subscribed), Exists(newer)).values_list("user_id", flat=True)[:limit]
    )
