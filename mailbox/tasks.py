"""Thin Celery wrappers: load an id, call a function in sync.py."""

from __future__ import annotations

from celery import shared_task

from . import sync


@shared_task(ignore_result=True)
def poll_due_accounts() -> int:
    """Beat, every 30 s: claim due accounts and enqueue one sync for each."""
    account_ids = sync.claim_due_accounts()
    for account_id in account_ids:
        sync_account.delay(account_id)
    return len(account_ids)


@shared_task(ignore_result=True)
def sync_account(account_id: int) -> dict:
    result = sync.sync_account(account_id)
    if result.fetched:
        index_search.delay()
    return result.as_json()


@shared_task(ignore_result=True)
def index_search() -> int:
    """After a sync that stored mail, and from beat as a sweep: build pending search documents."""
    from . import search

    return search.index_all_pending()


@shared_task(ignore_result=True)
def expire_trash() -> int:
    """Beat, hourly: messages in the trash for WEBPOP_TRASH_DAYS are deleted for good."""
    from django.conf import settings

    from . import actions

    return actions.expire_trash(settings.WEBPOP_TRASH_DAYS)
