"""State changes of notifications: subscribing browsers, the user's choice, and noticing new mail.

Every function takes the owner and touches only the owner's rows (invariant 7). Noticing
new mail (push/noticing.py, the work the tasks run) marks a notification due on each
subscription's row in one transaction and only then are the tasks published, so beat's
sweep (``push.delivery.sweep``) finds whatever a lost task or a dead worker left. Nothing
here may stop ingest (invariant 9): the sync calls ``new_mail_stored``, which never raises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from mailbox.models import Message

from . import noticing, tasks, vapid, webpush
from .models import Content, PushSettings, PushSubscription
from .noticing import new_inbox_mail, push_enabled, settings_for  # noqa: F401  (the views' and tests' names)

log = logging.getLogger(__name__)


MAX_BROWSERS = 20  # subscriptions per user


class SubscriptionError(ValueError):
    """The browser's subscription cannot be used; the message is for the browser's console."""


# --- Browsers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrowserSubscription:
    endpoint: str
    p256dh: str
    auth: str
    vapid_public: str  # the applicationServerKey the browser subscribed with


@transaction.atomic
def subscribe(
    owner, session_key_hash: str, browser: BrowserSubscription, *, language: str, user_agent: str = ""
) -> PushSubscription:
    """Keep the browser's subscription for ``owner`` (a new one, or the same browser again).

    Raises SubscriptionError when push is off, the browser subscribed with another key than
    the server's (the page subscribes again), or the subscription is not one we can send to.
    """
    if not push_enabled():
        raise SubscriptionError("Web Push is not set up on this server.")
    if browser.vapid_public != settings.WEBPOP_VAPID_PUBLIC_KEY:
        raise SubscriptionError("The subscription was made with another server key.")
    try:
        webpush.check_subscription(
            webpush.Subscription(browser.endpoint, browser.p256dh, browser.auth),
            allow_private=settings.WEBPOP_PUSH_ALLOW_PRIVATE,
        )
    except (webpush.EndpointError, vapid.VapidKeyError) as exc:
        raise SubscriptionError(str(exc)) from None
    state, new_state = PushSettings.objects.select_for_update().get_or_create(user_id=owner.id)
    if new_state or not PushSubscription.objects.filter(owner_id=owner.id).exists():
        # Mail already here when notifications are turned on is not new.
        newest = Message.objects.filter(owner_id=owner.id).aggregate(newest=Max("id"))["newest"] or 0
        PushSettings.objects.filter(user_id=owner.id).update(notified_up_to=max(newest, state.notified_up_to))
    subscription, created = PushSubscription.objects.update_or_create(
        owner_id=owner.id,
        endpoint=browser.endpoint,
        defaults={
            "session_id": session_key_hash,
            "p256dh": browser.p256dh,
            "auth": browser.auth,
            "vapid_public": browser.vapid_public,
            "language": language[:10],
            "user_agent": user_agent[:300],
        },
    )
    if created:
        # Each browser costs a request per notification: beyond the limit the oldest makes way.
        mine = PushSubscription.objects.filter(owner_id=owner.id)
        keep = list(mine.order_by("-created_at", "-id").values_list("id", flat=True)[:MAX_BROWSERS])
        mine.exclude(id__in=keep).delete()
    return subscription


@transaction.atomic
def unsubscribe(owner_id: int, endpoint: str) -> bool:
    """The browser turned notifications off: forget its subscription. False when there was none."""
    return PushSubscription.objects.filter(owner_id=owner_id, endpoint=endpoint).delete()[0] > 0


@transaction.atomic
def remove(owner_id: int, subscription_id: int) -> bool:
    """Stop notifying one of the owner's browsers (from the list on the Preferences page)."""
    return PushSubscription.objects.filter(owner_id=owner_id, id=subscription_id).delete()[0] > 0


@transaction.atomic
def set_content(owner_id: int, content: str) -> None:
    if content not in Content.values:
        raise ValueError(f"unknown notification content {content!r}")
    PushSettings.objects.update_or_create(user_id=owner_id, defaults={"content": content})


# --- New mail ------------------------------------------------------------------------------


def new_mail_stored(owner_id: int) -> None:
    """After a sync stored mail for ``owner_id``: look for new Inbox mail in a task. Never raises.

    Costs one query when the owner has no subscription. Should the task be lost, the sweep
    finds the new mail from the rows on its next tick.
    """
    try:
        if not push_enabled() or not PushSubscription.objects.filter(owner_id=owner_id).exists():
            return
        transaction.on_commit(lambda: _publish_check(owner_id), robust=True)
    except Exception:
        log.warning("push: could not look for new mail owner=%s", owner_id, exc_info=True)


def _publish_check(owner_id: int) -> None:
    tasks.notify_new_mail.delay(owner_id)


def notice_new_mail(owner_id: int) -> list[int]:
    """``noticing.notice_new_mail``, its deliveries published after commit; the subscriptions' ids."""
    ids = noticing.notice_new_mail(owner_id)
    transaction.on_commit(lambda: _publish_deliveries(ids), robust=True)
    return ids


def _publish_deliveries(ids: list[int]) -> None:
    for subscription_id in ids:
        tasks.deliver.delay(subscription_id)
