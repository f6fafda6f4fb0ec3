"""What people do to their messages: read, star, move, archive, delete, snooze, undo; saved searches; tabs.

Every function takes the owner explicitly and only touches that owner's rows,
so a forged id from another user changes nothing (invariant 7). Each one that changes
what a folder page shows replaces the owner's page version (pagecache.touch) in its transaction.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import MailAccount
from webpop.lib import pagecache

from . import filing, folders, purging, search, tabs, uploads
from .categories import Category

# Filing and snooze (mailbox/filing.py, snoozing.py: the work bulk jobs and beat run) are actions
# too, offered here under the names callers know.
from .filing import MOVABLE_TO, ActionError, can_move_to, move, owned, restore  # noqa: F401
from .models import BulkJob, ImportJob, Message, SavedSearch, SenderCategory
from .snoozing import NOT_SNOOZED, WAKE_BATCH, snooze, wake_all_due, wake_due, wake_for_new_mail  # noqa: F401


class ImportsBusy(ActionError):
    """The user has as many imports waiting or running as allowed."""


@transaction.atomic
def set_seen(owner_id: int, ids, seen: bool) -> int:
    return filing.touched(owner_id, owned(owner_id, ids).update(seen=seen))


@transaction.atomic
def set_flagged(owner_id: int, ids, flagged: bool) -> int:
    return filing.touched(owner_id, owned(owner_id, ids).update(flagged=flagged))


def free_released_after_commit() -> None:
    """Files released in this transaction (storage_gc.release) are freed by a worker right after commit.

    Without it beat's sweep frees them within minutes; a broker that is down fails nothing.
    """
    from . import tasks

    transaction.on_commit(tasks.free_released_files.delay, robust=True)


def empty_trash(owner_id: int, ids=None) -> int:
    """Delete messages in the trash for good (``purging.empty_trash``); their files are freed after commit."""
    with transaction.atomic():
        emptied = purging.empty_trash(owner_id, ids)
        if emptied:
            free_released_after_commit()
    return emptied


def delete_for_good(ids) -> int:
    """Delete these messages for good as the site (``purging.delete_for_good``); files freed after commit."""
    with transaction.atomic():
        deleted = purging.delete_for_good(ids)
        if deleted:
            free_released_after_commit()
    return deleted


def expire_trash(days: int) -> int:
    """Trash expiry for every user (``purging.expire_trash``, which beat's task runs), files freed after."""
    expired = purging.expire_trash(days)
    if expired:
        free_released_after_commit()
    return expired


# Uploads wait in the mail storage until imported: a user queues only a few at a time.
MAX_ACTIVE_IMPORTS = 3


def import_slots_left(owner_id: int) -> int:
    return MAX_ACTIVE_IMPORTS - ImportJob.objects.filter(owner_id=owner_id, state__in=ImportJob.ACTIVE).count()


def start_import(owner, account: MailAccount, folder: str, files: list[tuple[str, Path, int]]) -> ImportJob:
    """Keep uploaded files (name, temp file in the store's temp folder, size) and queue their import.

    The files are moved into the mail storage, the job row is committed, and
    the worker gets its id after commit (a beat sweep finds it if that is lost).
    """
    if import_slots_left(owner.id) <= 0:
        raise ImportsBusy("Too many imports waiting or running.")
    if account.owner_id != owner.id:
        raise ActionError("Not your account.")
    if folder not in dict(folders.SYSTEM_TARGETS) and not folders.is_owned_slug(owner.id, folder):
        raise ActionError(f"Cannot import into {folder!r}.")
    prefix = uploads.new_prefix()
    kept: list[dict] = []
    try:
        for number, (name, temp_path, size) in enumerate(files):
            path = f"{prefix}{number}"
            uploads.keep(temp_path, path)
            kept.append({"name": name[:255], "path": path, "size": size})
        with transaction.atomic():
            job = ImportJob.objects.create(
                owner=owner, account=account, folder=folder, files=kept, total_bytes=sum(f["size"] for f in kept)
            )
            transaction.on_commit(lambda: _enqueue_import(job.id))
    except BaseException:
        uploads.delete(f["path"] for f in kept)
        raise
    return job


def _enqueue_import(job_id: int) -> None:
    from . import tasks

    tasks.import_mailbox.delay(job_id)


# --- Actions on a whole folder or search ("Select all N") ----------------------------------------

BULK_JOB_ACTIONS = {"read", "unread", "star", "unstar", "move"}
MAX_ACTIVE_BULK_JOBS = 3


class BulkJobsBusy(ActionError):
    """The user has as many bulk jobs waiting or running as allowed."""


def start_bulk_job(owner_id: int, criteria: dict, action: str, folder: str = "") -> BulkJob:
    """Record an action on every message ``criteria`` names (bulkjobs.matching) and queue it for a worker.

    Counts what it will go through and notes the newest id now: mail arriving meanwhile is left alone.
    """
    from . import bulkjobs

    if action not in BULK_JOB_ACTIONS or (action == "move" and not can_move_to(owner_id, folder)):
        raise ActionError(f"Cannot {action} to {folder!r}.")
    rows = bulkjobs.matching(owner_id, criteria)  # CriteriaError for a folder, view or account not the owner's
    with transaction.atomic():
        active = BulkJob.objects.select_for_update().filter(owner_id=owner_id, state__in=BulkJob.ACTIVE)
        if len(active) >= MAX_ACTIVE_BULK_JOBS:
            raise BulkJobsBusy("Too many bulk actions waiting or running.")
        last_id = Message.objects.filter(owner_id=owner_id).order_by("-id").values_list("id", flat=True).first() or 0
        job = BulkJob.objects.create(
            owner_id=owner_id,
            action=action,
            folder=folder if action == "move" else "",
            criteria=criteria,
            last_id=last_id,
            total=rows.filter(id__lte=last_id).count(),
        )
        transaction.on_commit(lambda: _enqueue_bulk_job(job.id))
    return job


def undo_bulk_job(owner_id: int, job_id: int) -> BulkJob | None:
    """Put back what a bulk job changed (as a job of its own); a job still running stops first.

    None when there is nothing to undo (another user's job, an undo, or one already undone).
    """
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().filter(id=job_id, owner_id=owner_id).exclude(action="undo").first()
        if job is None or job.undos.exists():
            return None
        if job.active:
            # The row lock: no batch of the job commits after this, so its items are all there is to undo.
            job.state, job.lease_token, job.lease_until, job.finished_at = (
                BulkJob.State.CANCELLED,
                "",
                None,
                timezone.now(),
            )
            job.save(update_fields=["state", "lease_token", "lease_until", "finished_at"])
        items = job.items.order_by("-id").values_list("id", flat=True)
        undo = BulkJob.objects.create(
            owner_id=owner_id, action="undo", undo_of=job, criteria={}, last_id=items.first() or 0, total=items.count()
        )
        transaction.on_commit(lambda: _enqueue_bulk_job(undo.id))
    return undo


def _enqueue_bulk_job(job_id: int) -> None:
    from . import tasks

    tasks.run_bulk_job.delay(job_id)


# --- Saved searches -------------------------------------------------------------------------------

MAX_SAVED_SEARCHES = 100


class SavedSearchError(ActionError):
    pass


def _search_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise SavedSearchError(gettext("Give the search a name."))
    if len(name) > 100:
        raise SavedSearchError(gettext("Names are at most 100 characters."))
    return name


def save_search(owner_id: int, name: str, query: str) -> SavedSearch:
    """Keep ``query`` under ``name`` in the owner's sidebar."""
    name, query = _search_name(name), (query or "").strip()
    if not query or len(query) > 500:
        raise SavedSearchError(gettext("Searches to save are 1 to 500 characters long."))
    try:
        search.apply(Message.objects.none(), search.parse(query))  # the page would say what is wrong: refuse it now
    except search.SearchError as exc:
        raise SavedSearchError(str(exc)) from None
    if SavedSearch.objects.filter(owner_id=owner_id).count() >= MAX_SAVED_SEARCHES:
        raise SavedSearchError(
            gettext("You have %(count)d saved searches, as many as allowed.") % {"count": MAX_SAVED_SEARCHES}
        )
    try:
        with transaction.atomic():
            saved = SavedSearch.objects.create(owner_id=owner_id, name=name, query=query)
            pagecache.touch([owner_id])
            return saved
    except IntegrityError:
        raise SavedSearchError(gettext("You already have a search called “%(name)s”.") % {"name": name}) from None


def rename_search(saved: SavedSearch, name: str) -> SavedSearch:
    saved.name = _search_name(name)
    try:
        with transaction.atomic():
            saved.save(update_fields=["name"])
            pagecache.touch([saved.owner_id])
    except IntegrityError:
        raise SavedSearchError(gettext("You already have a search called “%(name)s”.") % {"name": saved.name}) from None
    return saved


@transaction.atomic
def delete_search(saved: SavedSearch) -> None:
    saved.delete()
    pagecache.touch([saved.owner_id])


# --- Reading --------------------------------------------------------------------------------------


def mark_opened(owner_id: int, ids) -> int:
    """The reader opened these messages: mark the unread ones read (one UPDATE, the owner's rows only).

    One statement, so no transaction of its own. Pages listing them are out of date when
    anything changed; no cached page is dropped when they were all read already.
    """
    count = owned(owner_id, ids).filter(seen=False).update(seen=True) if ids else 0
    if count:
        pagecache.touch([owner_id])
    return count


@transaction.atomic
def move_sender_to_tab(owner_id: int, message_id: int, category: Category) -> int:
    """Put the sender of one of the owner's messages in ``category``'s Inbox tab: their mail stored so
    far and all that comes later (SenderCategory, read at ingest). Returns the messages changed."""
    message = owned(owner_id, [message_id]).values("from_email").first()
    address = (message or {}).get("from_email", "").strip().lower()
    if not address:
        raise ActionError(gettext("This message has no sender address to sort by."))
    SenderCategory.objects.update_or_create(
        owner_id=owner_id, address=address, defaults={"category": int(category), "updated_at": timezone.now()}
    )
    changed = Message.objects.filter(owner_id=owner_id, from_email__iexact=address).update(
        category=tabs.stored(category)
    )
    return filing.touched(owner_id, changed)


# "Sync now" puts the account's next poll this far ahead and publishes its sync: should that task be lost
# (a broker restart, a worker killed holding it), beat's poll syncs the account then. A sync that runs
# sets the real next poll when it ends. A sync that could not be published at all (Redis away) makes the
# account due at once: beat's first poll once Redis is back syncs it.
SYNC_NOW_FALLBACK = dt.timedelta(minutes=2)


@transaction.atomic
def sync_now(account: MailAccount) -> bool:
    """Sync the account as soon as a worker is free; False (nothing done) when it is paused."""
    claimed = MailAccount.objects.filter(id=account.id, enabled=True).update(
        next_poll_at=timezone.now() + SYNC_NOW_FALLBACK
    )
    if claimed:
        transaction.on_commit(lambda: _publish_sync(account.id))
    return bool(claimed)


def _publish_sync(account_id: int) -> None:
    from . import tasks

    if tasks.sync_account.delay(account_id) is None:  # not published (webpop/celery.py, WebpopTask)
        MailAccount.objects.filter(id=account_id, enabled=True, next_poll_at__gt=timezone.now()).update(
            next_poll_at=timezone.now()
        )
