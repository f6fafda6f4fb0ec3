"""Celery wrappers around push.noticing and push.delivery: load an id, call one function."""

from __future__ import annotations

from celery import shared_task

from . import delivery, noticing


@shared_task(ignore_result=True)
def notify_new_mail(owner_id: int) -> int:
    """After a sync stored mail: mark a notification due on each subscription, then publish their deliveries."""
    ids = noticing.notice_new_mail(owner_id)  # committed on return
    for subscription_id in ids:
        deliver.delay(subscription_id)
    return len(ids)


@shared_task(ignore_result=True)
def deliver(subscription_id: int) -> str:
    """One try of a subscription's pending notification; a retry's time is on the row, not in the broker."""
    return delivery.deliver(subscription_id)


@shared_task(ignore_result=True)
def sweep() -> int:
    """Beat, every tick: new mail whose task was lost, and deliveries that are due."""
    ids = delivery.sweep()
    for subscription_id in ids:
        deliver.delay(subscription_id)
    return len(ids)
