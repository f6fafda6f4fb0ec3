"""Sending each subscription's pending notification, and beat's sweep that finds lost work again.

A notification is due on its subscription's row (``due_at``). A worker claims the row with a
conditional UPDATE, builds the payload the owner chose (the unread count, or the sender and
subject of the newest message: never a body), encrypts it for that browser and posts it to
the push service. A temporary failure puts the next try's time on the row; a 404 or 410
deletes the subscription. Beat's sweep (every tick) notices new mail whose task was lost and
publishes deliveries that are due and not on their way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from django.conf import settings
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from mailbox import folders
from mailbox.models import Folder

from . import noticing, webpush
from .models import Content, PushSubscription

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
CLAIM_LEASE = dt.timedelta(minutes=2)  # a try takes at most WEBPOP_PUSH_TIMEOUT (at most 60 s)
REDISPATCH_AFTER = dt.timedelta(minutes=2)  # a task published this long ago and not run: lost
TTL = 12 * 3600  # how long a push service keeps a notification for a browser that is offline
TOPIC = "new-mail"  # a newer notification replaces one the push service still holds
TAG = "webpop-new-mail"  # the browser shows one new-mail notification at a time
MAX_TITLE, MAX_BODY = 120, 240


def backoff(attempts: int) -> dt.timedelta:
    """Wait before try ``attempts + 1``: 30 s, 1 min, 2 min, 4 min."""
    return dt.timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def payload(subscription: PushSubscription) -> dict | None:
    """What the notification says, in the subscriber's language; None when nothing is unread any more."""
    owner_id = subscription.owner_id
    unread = folders.unread_counts(owner_id, [Folder.INBOX]).get(Folder.INBOX, 0)
    if not unread:
        return None
    content = noticing.settings_for(owner_id).content
    with translation.override(subscription.language or settings.LANGUAGE_CODE):
        newest = None
        if content == Content.SENDER:
            newest = noticing.new_inbox_mail(owner_id).only("id", "from_name", "from_email", "subject").last()
        if newest is not None:
            data = {
                "title": newest.sender[:MAX_TITLE],
                "body": (newest.subject or gettext("(no subject)"))[:MAX_BODY],
                "url": reverse("mailbox:message", args=[newest.id]),
            }
        else:
            data = {
                "title": gettext("New mail"),
                "body": gettext("%(count)s unread") % {"count": folders.badge(unread)},
                "url": reverse("mailbox:inbox"),
            }
    return {**data, "tag": TAG, "unread": unread}


def _claim(subscription_id: int, now: dt.datetime) -> PushSubscription | None:
    claimable = Q(due_at__lte=now, attempts__lt=MAX_ATTEMPTS) & (
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_LEASE)
    )
    taken = PushSubscription.objects.filter(claimable, id=subscription_id).update(
        claimed_at=now, attempts=F("attempts") + 1
    )
    return PushSubscription.objects.filter(id=subscription_id).first() if taken == 1 else None


def deliver(subscription_id: int) -> str:
    """Send the subscription's pending notification (exactly one worker wins the claim)."""
    outcome = "skipped"
    for _round in range(3):  # again when newer mail was noticed while a notification was on its way
        subscription = _claim(subscription_id, timezone.now())
        if subscription is None:
            return outcome
        outcome, again = _send(subscription)
        if not again:
            break
    return outcome


def _send(subscription: PushSubscription) -> tuple[str, bool]:
    now = timezone.now()
    if not noticing.push_enabled() or subscription.vapid_public != settings.WEBPOP_VAPID_PUBLIC_KEY:
        # Made with a key this server no longer has: the push service would refuse it.
        return "refused", _finish(subscription, None, last_error="made with another server key")
    data = payload(subscription)
    if data is None:
        return "nothing", _finish(subscription, None)
    result = webpush.send(
        webpush.Subscription(subscription.endpoint, subscription.p256dh, subscription.auth),
        json.dumps(data, ensure_ascii=False).encode(),
        private_key=settings.WEBPOP_VAPID_PRIVATE_KEY,
        subject=settings.WEBPOP_VAPID_SUBJECT,
        ttl=TTL,
        topic=TOPIC,
        timeout=settings.WEBPOP_PUSH_TIMEOUT,
        allow_private=settings.WEBPOP_PUSH_ALLOW_PRIVATE,
    )
    log.info(
        "push subscription=%s owner=%s outcome=%s status=%s",
        subscription.id,
        subscription.owner_id,
        result.outcome.value,
        result.status,
    )
    if result.outcome is webpush.Outcome.GONE:
        PushSubscription.objects.filter(id=subscription.id).delete()
        return "gone", False
    if result.outcome is webpush.Outcome.DELIVERED:
        return "delivered", _finish(subscription, None, last_success_at=now, failures=0, last_error="")
    retry = result.outcome is webpush.Outcome.RETRY and subscription.attempts < MAX_ATTEMPTS
    wait = max(backoff(subscription.attempts), dt.timedelta(seconds=min(result.retry_after or 0, 3600)))
    return "retry" if retry else "failed", _finish(
        subscription, now + wait if retry else None, failures=F("failures") + 1, last_error=result.detail
    )


def _finish(subscription: PushSubscription, due_at: dt.datetime | None, **record) -> bool:
    """Release the claim and record the try; True when newer mail was noticed meanwhile (send again)."""
    mine = PushSubscription.objects.filter(id=subscription.id, claimed_at=subscription.claimed_at)
    if mine.filter(due_at__gt=subscription.due_at).update(claimed_at=None, **record) == 1:
        return True
    mine.update(claimed_at=None, due_at=due_at, **record)
    return False


def dispatch_due(now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of subscriptions to publish a delivery task for now, each claimed for that with a conditional UPDATE.

    Due: the notification's time has come, no worker holds it (or its worker died), and no task
    was published for this try (or that one is overdue: lost). Out of tries: given up.
    """
    now = now or timezone.now()
    free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_LEASE)
    PushSubscription.objects.filter(free, due_at__isnull=False, attempts__gte=MAX_ATTEMPTS).update(
        due_at=None, claimed_at=None
    )
    not_on_its_way = (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=F("due_at")) | Q(enqueued_at__lt=now - REDISPATCH_AFTER)
    )
    due = Q(due_at__lte=now) & free & not_on_its_way
    candidates = PushSubscription.objects.filter(due).order_by("due_at").values_list("id", flat=True)
    return [
        subscription_id
        for subscription_id in list(candidates[:limit])
        if PushSubscription.objects.filter(due, id=subscription_id).update(enqueued_at=now) == 1
    ]


def sweep(now: dt.datetime | None = None) -> list[int]:
    """Beat, every tick: new mail nobody noticed (a lost task), then deliveries to publish."""
    if not noticing.push_enabled():
        return []
    noticed = []
    for owner_id in noticing.owners_with_new_mail():
        noticed += noticing.notice_new_mail(owner_id)  # marked as on their way: published by the sweep's task
    return noticed + dispatch_due(now)
