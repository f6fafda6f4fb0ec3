"""What people do to their messages: read, star, move, archive, delete, snooze, undo; saved searches; tabs.

Every function takes the owner explicitly and only touches that owner's rows,
so a forged id from another user changes nothing (invariant 7). Each one that changes
what a folder page shows replaces the owner's page version (pagecache.touch) in its transaction.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import MailAccount
from webpop.lib import pagecache

from . import filing, folders, search, storage_gc, tabs, uploads
from .categories import Category

# Filing (mailbox/filing.py) is one of the actions: offered here under the names callers know.
from .filing import MOVABLE_TO, ActionError, can_move_to, move, owned, restore  # noqa: F401
from .models import BulkJob, Folder, ImportJob, Message, SavedSearch, SenderCategory, ServerState


class ImportsBusy(ActionError):
    """The user has as many imports waiting or running as allowed."""


@transaction.atomic
def set_seen(owner_id: int, ids, seen: bool) -> int:
    return filing.touched(owner_id, owned(owner_id, ids).update(seen=seen))


@transaction.atomic
def set_flagged(owner_id: int, ids, flagged: bool) -> int:
    return filing.touched(owner_id, owned(owner_id, ids).update(flagged=flagged))


def empty_trash(owner_id: int, ids=None) -> int:
    """Delete messages in the trash for good (all of them, or ``ids``).

    Under the mirror policy this is when the server copy is marked for DELE
    at the next sync. A message whose server copy still exists stays as a
    small tombstone without files, so its UIDL is never fetched again; rows
    whose server copy is gone are removed entirely.
    """
    with transaction.atomic():
        trash = Message.objects.filter(owner_id=owner_id, folder=Folder.TRASH)
        if ids is not None:
            trash = trash.filter(id__in=list(ids))
        trash = trash.select_for_update()
        ids = list(trash.values_list("id", flat=True))
        if not ids:
            return 0
        rows = Message.objects.filter(id__in=ids)
        rows.filter(account__policy__startswith="mirror", server_state=ServerState.ON_SERVER).update(
            server_state=ServerState.DELETE_PENDING
        )
        _purge(ids)
        pagecache.touch([owner_id])
        free_released_after_commit()
    return len(ids)


def delete_for_good(ids) -> int:
    """Delete any of these messages for good, as the site (the admin) and not their owner.

    The same as emptying the trash, except that no server copy is marked for DELE:
    the owner did not ask for that. Tombstones keep the UIDLs of copies still on
    the server, so the next sync does not fetch them again.
    """
    with transaction.atomic():
        rows = Message.objects.filter(id__in=list(ids)).exclude(folder=Folder.PURGED).select_for_update()
        found = list(rows.values_list("id", "owner_id"))
        _purge([pk for pk, _owner in found])
        pagecache.touch({owner for _pk, owner in found})
        free_released_after_commit()
    return len(found)


def _purge(ids: list[int]) -> None:
    """Rows whose server copy is gone go entirely; the others become tombstones without files or text."""
    storage_gc.purge_messages(Message.objects.filter(id__in=ids, server_state=ServerState.GONE))
    tombstones = Message.objects.filter(id__in=ids)
    storage_gc.release_files(tombstones)
    tombstones.update(folder=Folder.PURGED, raw_path="", snippet="", search_text="", html_cache="", html_cache_meta={})


def free_released_after_commit() -> None:
    """Files released in this transaction (storage_gc.release) are freed by a worker right after commit.

    Without it beat's sweep frees them within minutes; a broker that is down fails nothing.
    """
    from . import tasks

    transaction.on_commit(tasks.free_released_files.delay, robust=True)


def expire_trash(days: int) -> int:
    """Empty what has been in the trash for ``days`` days, for every user."""
    cutoff = timezone.now() - timezone.timedelta(days=days)
    owners = (
        Message.objects.filter(folder=Folder.TRASH, deleted_at__lt=cutoff).values_list("owner_id", flat=True).distinct()
    )
    total = 0
    for owner_id in list(owners):
        old = Message.objects.filter(owner_id=owner_id, folder=Folder.TRASH, deleted_at__lt=cutoff)
        total += empty_trash(owner_id, list(old.values_list("id", flat=True)))
    return total


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


# --- Snooze ---------------------------------------------------------------------------------------

# Where mail is never snoozed from: what was sent, judged or thrown away.
NOT_SNOOZED = [Folder.SENT, Folder.SPAM, Folder.TRASH, Folder.PURGED]
WAKE_BATCH = 500


@transaction.atomic
def snooze(owner_id: int, ids, until: dt.datetime) -> dict[int, str]:
    """Put the conversations of these messages away until ``until``; returns previous folders (for undo).

    A conversation is taken from the Inbox and from the folders the chosen messages are in
    (one filed in Archive is snoozed from there); its mail in Sent, Spam and Trash stays.
    Snoozing snoozed mail again sets its new time.
    """
    chosen = list(owned(owner_id, ids).exclude(folder__in=NOT_SNOOZED).values_list("id", "folder", "thread_id"))
    if not chosen:
        return {}
    threads = {thread for _pk, _folder, thread in chosen if thread}
    taken_from = {Folder.INBOX} | {folder for _pk, folder, _thread in chosen}
    conversation = Message.objects.filter(owner_id=owner_id, thread_id__in=threads, folder__in=taken_from)
    previous = dict(conversation.values_list("id", "folder")) | {pk: folder for pk, folder, _thread in chosen}
    Message.objects.filter(owner_id=owner_id, id__in=list(previous)).update(folder=Folder.SNOOZED, snoozed_until=until)
    pagecache.touch([owner_id])
    return previous


def wake_due(now: dt.datetime | None = None, limit: int = WAKE_BATCH) -> int:
    """Return snoozed mail whose time has come to the Inbox, on top and unread (beat's sweep).

    On top: ``surfaced_at`` is the time it came back, and the Inbox lists it as if it had
    arrived then (Message.INBOX_ORDER). Unread: the newest message of each conversation, as a
    conversation that comes back is news again. Up to ``limit`` messages, soonest due first;
    returns how many.

    The claim is one conditional UPDATE that returns what it changed: two sweeps at once (a
    retried task, a second beat after a failover) each wake only the rows they changed, so a
    message is woken, and marked unread, once. On PostgreSQL a second sweep skips the rows
    the first has locked rather than waiting for them.
    """
    now = now or timezone.now()
    quote = connection.ops.quote_name
    table, date = quote(Message._meta.db_table), quote("date")
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    stamp = connection.ops.adapt_datetimefield_value(now)
    # Only the table's and columns' names are formatted in; every value is a parameter. The claim is a
    # CTE, run once: as a subquery of the UPDATE, PostgreSQL may run it again for later rows, and
    # with the first rows changed by then it returns more, past the LIMIT.
    sql = (
        f"WITH due AS (SELECT id FROM {table} WHERE folder = %s AND snoozed_until <= %s "  # noqa: S608
        f"ORDER BY snoozed_until, id LIMIT %s{skip_locked}) "
        f"UPDATE {table} SET folder = %s, snoozed_until = NULL, "
        f"surfaced_at = CASE WHEN {date} > %s THEN {date} ELSE %s END "
        f"FROM due WHERE {table}.id = due.id AND folder = %s AND snoozed_until <= %s RETURNING {table}.id"
    )
    params = [Folder.SNOOZED.value, stamp, limit, Folder.INBOX.value, stamp, stamp, Folder.SNOOZED.value, stamp]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            woken = [pk for (pk,) in cursor.fetchall()]
        if not woken:
            return 0
        newest: dict[tuple[int, int], tuple[dt.datetime, int]] = {}
        owners = set()
        for pk, owner_id, thread_id, date_ in Message.objects.filter(id__in=woken).values_list(
            "id", "owner_id", "thread_id", "date"
        ):
            owners.add(owner_id)
            conversation = (owner_id, thread_id or pk)
            newest[conversation] = max(newest.get(conversation, (date_, pk)), (date_, pk))
        Message.objects.filter(owner_id__in=owners, id__in=[pk for _date, pk in newest.values()]).update(seen=False)
        pagecache.touch(owners)
    return len(woken)


def wake_all_due(now: dt.datetime | None = None) -> int:
    """``wake_due`` until nothing due is left; returns the total."""
    total = 0
    while woken := wake_due(now):
        total += woken
    return total


def wake_for_new_mail(messages: list[Message]) -> int:
    """New mail that lands in the Inbox brings its snoozed conversation back with it (as Gmail does).

    ``messages``: newly stored ones of one owner, after rules filed them (mail a rule files
    elsewhere leaves the conversation asleep). The conversation goes back where its dates put
    it: the new message, the newest, is on top. Returns how many messages woke.
    """
    threads = {m.thread_id for m in messages if m.folder == Folder.INBOX and m.thread_id}
    if not threads:
        return 0
    owner_id = messages[0].owner_id
    with transaction.atomic():
        woken = Message.objects.filter(owner_id=owner_id, folder=Folder.SNOOZED, thread_id__in=threads).update(
            folder=Folder.INBOX, snoozed_until=None
        )
        return filing.touched(owner_id, woken)


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
# sets the real next poll when it ends.
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

    tasks.sync_account.delay(account_id)
