"""Freeing stored files that no row references any more.

Two ways in, both driven by the column registry (``storage_refs``):

- Deletions release the files of what they delete: ``release(paths)`` writes a
  ``FileToFree`` row per file in the deleting transaction; the action that
  deletes wakes a worker after commit. The beat sweep ``free_released`` frees
  every row whose time has come, so a lost broker message or a dead worker delays the freeing, never
  loses it. A file still referenced elsewhere (the same content in another row)
  is kept; one written in the last minutes is tried again after its grace period.
- ``collect_garbage`` (daily from beat, and ``manage.py gcstorage``) lists the
  whole store, a shard per slice with its progress recorded, and frees what
  nothing references: files left by crashes between a file and its row, and
  anything a release missed.

Only files older than ``GC_GRACE`` are freed: a younger one may belong to an
ingest whose rows are not committed yet, and storing content that already exists
refreshes the file's modification time (``store``). On the local store the file
is moved aside before a last look and put back if it was stored again meanwhile;
on a remote storage (storage API only: ``listdir``, ``get_modified_time``,
``size``, ``delete``) the age is read last, just before the delete.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from webpop.lib import walks

from . import storage_refs, store
from .models import Attachment, FileToFree, Message

log = logging.getLogger(__name__)

GC_GRACE = dt.timedelta(minutes=15)  # longer than any ingest between its file and its commit
TEMP_GRACE = dt.timedelta(days=1)  # longer than any single download
SWEEP_LEASE = dt.timedelta(minutes=10)  # a sweep that died lets go of its rows after this long
SWEEP_BATCH = 500


class Outcome(enum.Enum):
    FREED = "freed"
    YOUNG = "young"  # unreferenced, but too recently stored to free yet
    REFERENCED = "referenced"
    MISSING = "missing"
    FOREIGN = "foreign"  # not a path of the store's layout: never ours to free


@dataclass(frozen=True)
class Freeing:
    outcome: Outcome
    size: int = 0
    retry_at: dt.datetime | None = None  # for YOUNG: when the grace period is over


def modified_at(storage: Storage, relpath: str) -> dt.datetime:
    modified = storage.get_modified_time(relpath)
    return timezone.make_aware(modified, dt.UTC) if timezone.is_naive(modified) else modified


def _young(modified: dt.datetime, grace: dt.timedelta) -> Freeing | None:
    if timezone.now() - modified < grace:
        return Freeing(Outcome.YOUNG, retry_at=modified + grace)
    return None


def free_file(relpath: str, *, grace: dt.timedelta = GC_GRACE, dry_run: bool = False) -> Freeing:
    """Delete one stored file if no row references it and it is older than ``grace``."""
    if store.sha_of(relpath) is None:
        return Freeing(Outcome.FOREIGN)
    storage = store.mail_storage()
    local = store.local_root(storage)
    if local is None:
        return _free_remote(storage, relpath, grace, dry_run)
    try:
        young = _young(modified_at(storage, relpath), grace)
        size = storage.size(relpath)
    except FileNotFoundError:
        return Freeing(Outcome.MISSING)
    if young:
        return young
    if storage_refs.is_referenced(relpath):
        return Freeing(Outcome.REFERENCED)
    if dry_run:
        return Freeing(Outcome.FREED, size)
    path = local / relpath
    aside = path.with_name(path.name + ".freeing")
    try:
        os.replace(path, aside)  # from here on a new store of this content writes a fresh file
    except FileNotFoundError:
        return Freeing(Outcome.MISSING)
    mtime = aside.stat().st_mtime
    stored_again = time.time() - mtime < grace.total_seconds()
    if stored_again or storage_refs.is_referenced(relpath):  # put it back
        if path.exists():
            aside.unlink(missing_ok=True)
        else:
            os.replace(aside, path)
        if stored_again:
            return Freeing(Outcome.YOUNG, retry_at=dt.datetime.fromtimestamp(mtime, dt.UTC) + grace)
        return Freeing(Outcome.REFERENCED)
    aside.unlink(missing_ok=True)
    return Freeing(Outcome.FREED, size)


def _free_remote(storage: Storage, relpath: str, grace: dt.timedelta, dry_run: bool) -> Freeing:
    # References first and the age last: a store of the same content rewrites the file
    # (``store._keep_remote``), so only a rewrite in the one request before the delete can be missed.
    if storage_refs.is_referenced(relpath):
        return Freeing(Outcome.REFERENCED)
    if not storage.exists(relpath):
        return Freeing(Outcome.MISSING)
    size = storage.size(relpath)
    young = _young(modified_at(storage, relpath), grace)
    if young:
        return young
    if not dry_run:
        storage.delete(relpath)
    return Freeing(Outcome.FREED, size)


def free_if_unreferenced(relpath: str, *, grace: dt.timedelta = GC_GRACE, dry_run: bool = False) -> int | None:
    """The bytes freed, or None when the file is kept (referenced, young, missing or not ours)."""
    result = free_file(relpath, grace=grace, dry_run=dry_run)
    return result.size if result.outcome is Outcome.FREED else None


# --- Released files: rows, freed by a sweep -------------------------------------------


def release(paths: Iterable[str]) -> int:
    """Inside the transaction that drops their references: free these files once nothing references them.

    Rows only, so the freeing survives a lost broker message: beat's sweep (``free_released``)
    frees them within minutes, and an action that releases files wakes a worker after commit
    to free them at once (``mailbox.actions.free_released_after_commit``). This module
    publishes no task: the freeing task runs it.
    """
    rows = [FileToFree(relpath=path) for path in sorted(set(paths)) if path]
    if not rows:
        return 0
    FileToFree.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


@dataclass
class SweepReport:
    freed: int = 0
    bytes_freed: int = 0
    kept: int = 0  # referenced again, missing already, or not ours: done with
    later: int = 0  # stored in the last minutes, or the storage failed: tried again later


def _claim(limit: int) -> tuple[str, list[FileToFree]]:
    """Take up to ``limit`` due rows for this sweep: a conditional update, so each row has one taker."""
    now = timezone.now()
    due = list(
        FileToFree.objects.filter(not_before__lte=now).order_by("not_before").values_list("id", flat=True)[:limit]
    )
    if not due:
        return "", []
    token = secrets.token_hex(16)
    claimed = FileToFree.objects.filter(id__in=due, not_before__lte=now).update(
        not_before=now + SWEEP_LEASE, claim=token
    )
    if not claimed:  # another sweep took them all
        return token, []
    return token, list(FileToFree.objects.filter(id__in=due, claim=token))


def free_released(*, limit: int = SWEEP_BATCH, grace: dt.timedelta = GC_GRACE) -> SweepReport:
    """Beat, every few minutes, and after each release: free the released files whose time has come."""
    report = SweepReport()
    while True:
        token, rows = _claim(limit)
        if not rows:
            return report
        done = []
        for row in rows:
            try:
                result = free_file(row.relpath, grace=grace)
            except Exception:  # one unreadable file must not hold up the rest; its row stays for later
                log.exception("freeing %s failed; trying again later", row.relpath)
                report.later += 1
                continue
            if result.outcome is Outcome.YOUNG:
                FileToFree.objects.filter(id=row.id, claim=token).update(not_before=result.retry_at, claim="")
                report.later += 1
                continue
            done.append(row.id)
            if result.outcome is Outcome.FREED:
                report.freed += 1
                report.bytes_freed += result.size
            else:
                report.kept += 1
        FileToFree.objects.filter(id__in=done, claim=token).delete()
        if len(rows) < limit:
            return report


def purge_messages(messages: QuerySet[Message] | Iterable[Message]) -> int:
    """Delete messages for good and release their files (freed once nothing else references them)."""
    ids = (
        [m.pk for m in messages] if not isinstance(messages, QuerySet) else list(messages.values_list("pk", flat=True))
    )
    with transaction.atomic():
        release(storage_refs.files_of("message", ids))
        Message.objects.filter(pk__in=ids).delete()
    return len(ids)


def release_files(messages: QuerySet[Message]) -> None:
    """Drop the attachment rows of ``messages`` and release their files and raw files.

    The caller clears ``raw_path`` in the same transaction: the rows stay as
    tombstones that no longer reference any file.
    """
    ids = list(messages.values_list("pk", flat=True))
    release(storage_refs.files_of("message", ids))
    Attachment.objects.filter(message_id__in=ids).delete()


# --- Collecting: the whole store against the registry ---------------------------------


@dataclass
class GcReport:
    freed: list[tuple[str, int]] = field(default_factory=list)
    kept_young: int = 0

    @property
    def bytes_freed(self) -> int:
        return sum(size for _path, size in self.freed)


def list_folder(storage: Storage, folder: str) -> tuple[list[str], list[str]]:
    try:
        dirs, files = storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    return sorted(dirs), sorted(files)


def files_under(storage: Storage, folder: str) -> list[str]:
    dirs, files = list_folder(storage, folder)
    out = [f"{folder}/{name}" for name in files]
    for name in dirs:
        out += files_under(storage, f"{folder}/{name}")
    return out


def _restore_set_aside(storage: Storage, relpath: str) -> str:
    """A ``.freeing`` file is one a crash left mid-free: put it back unless a fresh copy exists."""
    original = relpath.removesuffix(".freeing")
    local = store.local_root(storage)
    if local is not None:
        if (local / original).exists():
            (local / relpath).unlink(missing_ok=True)
        else:
            os.replace(local / relpath, local / original)
    return original


WALK = "collect_garbage"


TOPS = ("raw", "att")


def _shards(storage: Storage) -> list[str]:
    """The top-level shard folders, in the order a collection walks them (raw first, each sorted)."""
    return [f"{top}/{shard}" for top in TOPS for shard in list_folder(storage, top)[0]]


def _place(folder: str) -> tuple[int, str]:
    top, _slash, shard = folder.partition("/")
    return TOPS.index(top), shard


def _collect_shard(storage: Storage, folder: str, report: GcReport, grace: dt.timedelta, dry_run: bool) -> None:
    candidates = []
    for relpath in files_under(storage, folder):
        if relpath.endswith(".freeing") and not dry_run:
            relpath = _restore_set_aside(storage, relpath)
        sha = store.sha_of(relpath)
        if sha:
            candidates.append((relpath, sha))
    referenced = storage_refs.referenced_shas(sha for _path, sha in candidates)
    for relpath, sha in candidates:
        if sha in referenced:
            continue
        result = free_file(relpath, grace=grace, dry_run=dry_run)
        if result.outcome is Outcome.FREED:
            report.freed.append((relpath, result.size))
        elif result.outcome is Outcome.YOUNG:
            report.kept_young += 1


def _collect_temp(storage: Storage, report: GcReport, grace: dt.timedelta, dry_run: bool) -> None:
    local = store.local_root(storage)
    if local is not None and (local / "tmp").is_dir():
        cutoff = time.time() - max(grace, TEMP_GRACE).total_seconds()
        for path in sorted((local / "tmp").iterdir()):
            stat = path.stat()
            if path.is_file() and stat.st_mtime < cutoff:
                if not dry_run:
                    path.unlink(missing_ok=True)
                report.freed.append((f"tmp/{path.name}", stat.st_size))


def collect_garbage(*, grace: dt.timedelta = GC_GRACE, dry_run: bool = False, pause: float | None = None) -> GcReport:
    """Free every stored file no row references, and temp files left by crashes.

    One top-level shard of the store per slice (webpop/lib/walks.py): its files are listed, their
    references looked up by content in statements of a bounded number of hashes, and the cursor
    (the last shard done) recorded, so memory stays small however large the store, a killed
    collection goes on at the next shard, and the database is left alone for ``pause`` between
    shards. Each candidate is checked again just before it is freed. A dry run records nothing.
    """
    storage = store.mail_storage()
    report = GcReport()
    if dry_run:
        for folder in _shards(storage):
            _collect_shard(storage, folder, report, grace, dry_run)
        _collect_temp(storage, report, grace, dry_run)
        return report

    def step(cursor: str) -> str | None:
        following = [folder for folder in _shards(storage) if not cursor or _place(folder) > _place(cursor)]
        if not following:
            _collect_temp(storage, report, grace, dry_run)
            return None
        _collect_shard(storage, following[0], report, grace, dry_run)
        return following[0]

    walks.run(WALK, step, atomic=False, pause=pause)
    return report
