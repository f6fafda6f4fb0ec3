"""Thin Celery wrappers: load an id, call a function in sync/ or importer.py."""

from __future__ import annotations

from celery import shared_task

from . import sync

# Accounts one beat tick claims at most: a host's polls for well over a tick, in a few statements.
CLAIM_CHUNK = 1000
CLAIM_MAX = 100_000


@shared_task(ignore_result=True)
def poll_due_accounts() -> int:
    """Beat, every 30 s: claim due accounts and enqueue their checks in batches (check.py)."""
    from django.conf import settings

    claimed = 0
    while claimed < CLAIM_MAX:
        account_ids = sync.claim_due_accounts(limit=CLAIM_CHUNK)
        size = settings.WEBPOP_CHECK_BATCH
        for start in range(0, len(account_ids), size):
            check_accounts.delay(account_ids[start : start + size])
        claimed += len(account_ids)
        if len(account_ids) < CLAIM_CHUNK:
            break
    return claimed


@shared_task(ignore_result=True)
def check_accounts(account_ids: list[int]) -> dict:
    """Check a batch of due accounts at once; those with new mail or deletions due get a sync each."""
    from .sync import check

    outcome = check.check_accounts(account_ids)
    for account_id in outcome.to_sync:
        sync_account.delay(account_id)
    return {"unchanged": len(outcome.unchanged), "to_sync": len(outcome.to_sync), "failed": len(outcome.failed)}


@shared_task(ignore_result=True)
def sync_account(account_id: int) -> dict:
    result = sync.sync_account(account_id)
    if result.fetched:
        from spam import tasks as spam_tasks

        index_search.delay()
        spam_tasks.scan_pending.delay()  # the scans were queued with the mail (spam/queue.py)
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

    from . import purging

    expired = purging.expire_trash(settings.WEBPOP_TRASH_DAYS)
    if expired:
        free_released_files.delay()  # their files, released by the expiry
    return expired


@shared_task(ignore_result=True)
def free_released_files() -> dict:
    """After a deletion commits, and from beat every few minutes: free released files (storage_gc)."""
    from dataclasses import asdict

    from . import storage_gc

    return asdict(storage_gc.free_released())


@shared_task(ignore_result=True)
def collect_garbage() -> dict:
    """Beat, daily: free stored files no row references (left by crashes, or missed by a release)."""
    from . import storage_gc

    report = storage_gc.collect_garbage()
    return {"freed": len(report.freed), "bytes_freed": report.bytes_freed, "kept_young": report.kept_young}


@shared_task(ignore_result=True)
def import_mailbox(job_id: int) -> str:
    """Run or resume one import of .eml / .mbox uploads (queued by actions.start_import)."""
    from . import importer

    return importer.run(job_id)


@shared_task(ignore_result=True)
def resume_imports() -> int:
    """Beat, every minute: imports whose task was lost or whose worker stopped go on; stale uploads are freed."""
    from . import importer

    job_ids = importer.resume_stalled()
    for job_id in job_ids:
        import_mailbox.delay(job_id)
    importer.sweep_uploads()
    return len(job_ids)


@shared_task(ignore_result=True)
def wake_snoozed() -> int:
    """Beat, every tick: snoozed mail whose time has come goes back to the Inbox (snoozing.wake_due)."""
    from . import snoozing

    return snoozing.wake_all_due()


@shared_task(ignore_result=True)
def run_bulk_job(job_id: int) -> str:
    """Run or resume one action on a whole folder or search (queued by actions.start_bulk_job)."""
    from . import bulkjobs

    return bulkjobs.run(job_id)


@shared_task(ignore_result=True)
def resume_bulk_jobs() -> int:
    """Beat, every tick: bulk jobs whose task was lost or whose worker stopped go on."""
    from . import bulkjobs

    job_ids = bulkjobs.resume_stalled()
    for job_id in job_ids:
        run_bulk_job.delay(job_id)
    return len(job_ids)


@shared_task(ignore_result=True)
def sort_into_tabs() -> int:
    """Beat, every minute while there is any: sort mail stored before Inbox tabs existed (a few batches)."""
    from . import tabs_backfill

    return tabs_backfill.backfill()


# Named as when users/tasks.py held it: messages queued by earlier versions still find it.
@shared_task(name="users.tasks.free_files", ignore_result=True)
def free_deleted_users_files(paths: list[str]) -> int:
    """Messages queued by earlier versions, which scheduled a deleted user's files in the broker: now rows."""
    from . import storage_gc

    released = storage_gc.release(paths)
    free_released_files.delay()
    return released
