"""Durable storage of raw messages and attachments, and the rows that point at them.

Files are content-addressed by SHA-256 in sharded folders (``raw/ab/<sha>.eml``,
``att/ab/<sha>``; one level, 256 folders, as git does: a fresh store would
otherwise create a folder for nearly every file; the two-level paths of
earlier versions, ``raw/ab/cd/<sha>.eml``, are still read and collected) and go through Django's storage API under the
``webpop_mail`` alias of ``STORAGES``, so an S3-compatible backend can hold them.
The default backend, :class:`MailStorage`, is a folder under
``WEBPOP_MAIL_DIR`` where every write is atomic and durable: temp file in the
same file system, fsync, rename, fsync the folder. A row is committed only
after its file is in place, so a committed row never points at a missing file;
a crash between the two leaves an unreferenced file at worst, which
the storage collector (:mod:`mailbox.storage_gc`, daily and ``manage.py gcstorage``)
frees later.

Freeing versus storing the same content concurrently: storing an existing
file refreshes its modification time before the row is committed (on a remote
storage that overwrites in place, by writing it again), and freeing skips
files younger than a grace period.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, InvalidStorageError, Storage, storages
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import MailAccount
from spam import queue as spam_queue
from webpop.lib import pagecache

from . import durability, list_headers, pgcopy, tabs, threads
from .mime import ParsedMessage
from .models import Attachment, Message

STORAGE_ALIAS = "webpop_mail"
_RELPATH = re.compile(r"(raw|att)/[0-9a-f]{2}/(?:[0-9a-f]{2}/)?(?P<sha>[0-9a-f]{64})(\.eml)?")


class VerificationError(Exception):
    """The bytes on disk are not the bytes the server sent."""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# The database's own disk: PostgreSQL's disk_full (SQLSTATE 53100), SQLite's SQLITE_FULL (13).
DISK_FULL_SQLSTATE = "53100"
SQLITE_FULL = 13


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error it was raised from, is a full file system (or disk quota), the mail
    store's or the database's (Django's database errors are raised from the driver's).
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        if getattr(exc, "errno", None) in DISK_FULL_ERRNOS or getattr(exc, "sqlstate", None) == DISK_FULL_SQLSTATE:
            return True
        if getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL:
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    relpath: str


class MailStorage(FileSystemStorage):
    """The local mail store: a folder that follows ``settings.WEBPOP_MAIL_DIR``.

    Names are content hashes, so a name already taken holds the same bytes:
    saving never renames, and writes are durable (fsync + atomic rename).
    """

    @property
    def base_location(self) -> str:  # read on each use: tests move the folder per test
        return str(self._location or settings.WEBPOP_MAIL_DIR)

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return name

    def _save(self, name: str, content: File) -> str:
        dest = Path(self.path(name))
        with _spool_file(Path(self.location)) as fh, _removed_on_error(fh):
            for chunk in content.chunks():
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        _rename_into_place(Path(fh.name), dest)
        return name


def mail_storage() -> Storage:
    try:
        return storages[STORAGE_ALIAS]
    except InvalidStorageError:  # settings without the alias: the local default
        return _fallback_storage


_fallback_storage = MailStorage()


def local_root(storage: Storage) -> Path | None:
    """The folder of a file-system storage (fsync + rename apply), None for remote storage."""
    return Path(storage.location) if isinstance(storage, FileSystemStorage) else None


def root() -> Path:
    """Where files are spooled before they enter the store (the store itself when local)."""
    return local_root(mail_storage()) or Path(settings.WEBPOP_MAIL_DIR)


def check_relpath(relpath: str) -> str:
    if not _RELPATH.fullmatch(relpath or ""):
        raise ValueError(f"{relpath!r} is not a mail store path")
    return relpath


def sha_of(relpath: str) -> str | None:
    """The content hash a mail store path names, None for a path outside the store's layout."""
    match = _RELPATH.fullmatch(relpath or "")
    return match.group("sha") if match else None


def names_of(sha256: str) -> tuple[str, ...]:
    """Every path the content ``sha256`` may be stored under: raw or attachment, either layout."""
    return (
        raw_relpath(sha256),
        blob_relpath(sha256),
        f"raw/{sha256[:2]}/{sha256[2:4]}/{sha256}.eml",
        f"att/{sha256[:2]}/{sha256[2:4]}/{sha256}",
    )


def path_of(relpath: str) -> Path:
    """The local path of a stored file (file-system storage only)."""
    local = local_root(mail_storage())
    if local is None:
        raise ValueError("the mail store is not on a local file system")
    return local / check_relpath(relpath)


def open_file(relpath: str) -> File | BinaryIO:
    """Open a stored file for reading, on whichever storage holds it. Raises OSError if missing.

    A local store's file is opened directly (Django's File wrapper costs more than
    reading a typical message); any other storage goes through its ``open``.
    """
    storage = mail_storage()
    local = local_root(storage)
    if local is not None:
        return open(local / check_relpath(relpath), "rb")
    return storage.open(check_relpath(relpath), "rb")


def _spool_file(folder: Path) -> BinaryIO:
    # A plain exclusive create: NamedTemporaryFile's wrappers cost more than the write for small mail.
    # The folder exists after the first file, so it is created only when the open says it is missing.
    name = os.path.join(folder, "tmp", f"in-{secrets.token_hex(12)}.part")
    try:
        return open(name, "xb")
    except FileNotFoundError:
        os.makedirs(os.path.dirname(name), exist_ok=True)
        return open(name, "xb")


@contextlib.contextmanager
def _removed_on_error(fh: BinaryIO):
    """A temp file that could not be written whole (a full disk, say) is removed, never left behind."""
    try:
        yield fh
    except BaseException:
        with contextlib.suppress(OSError):
            fh.close()  # may fail again flushing what is buffered; the descriptor is closed all the same
        Path(fh.name).unlink(missing_ok=True)
        raise


def temp_file() -> BinaryIO:
    """An open temp file on the store's file system (so rename is atomic)."""
    return _spool_file(root())


def require_durable(relpaths: Iterable[str]) -> None:
    """Inside ``batch_durability()``: these stored files are made durable with the batch."""
    local = local_root(mail_storage())
    if local is None:
        return  # a remote storage's save is durable when it returns
    if not durability.in_batch():
        raise RuntimeError("require_durable() outside batch_durability()")
    paths = [local / check_relpath(relpath) for relpath in relpaths]
    durability.defer(*paths, *{path.parent for path in paths})


def _rename_into_place(tmp_path: Path, dest: Path) -> None:
    try:  # the shard folder usually exists: try first, create only when missing
        os.replace(tmp_path, dest)
    except FileNotFoundError:
        if not os.path.exists(tmp_path):
            raise
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_path, dest)
    if not durability.defer(dest, dest.parent):
        durability.fsync_dir(dest.parent)


def _refresh(path: Path, size: int) -> bool:
    """Mark an existing file as just stored (see the module docstring); False if absent.

    Also False when it has the wrong size: a file damaged on disk (cut short, say) is then
    replaced by the good copy being stored, atomically, instead of being kept.
    """
    try:
        os.utime(path)
        return os.stat(path).st_size == size
    except FileNotFoundError:
        return False


def hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def raw_relpath(sha256: str) -> str:
    return f"raw/{sha256[:2]}/{sha256}.eml"


def blob_relpath(sha256: str) -> str:
    return f"att/{sha256[:2]}/{sha256}"


def commit_raw(tmp_path: Path, *, expected_size: int, expected_sha256: str) -> StoredFile:
    """Verify a fully written, fsynced temp file and move it into the store."""
    size, sha = hash_file(tmp_path)
    if size != expected_size or sha != expected_sha256:
        raise VerificationError(
            f"stored bytes differ from received bytes (size {size} vs {expected_size}, sha256 {sha[:12]}…)"
        )
    relpath = raw_relpath(sha)
    storage = mail_storage()
    local = local_root(storage)
    if local is not None:
        if _refresh(local / relpath, size):  # same name, same content: keep the one already durable
            tmp_path.unlink(missing_ok=True)
        else:
            _rename_into_place(tmp_path, local / relpath)
    else:
        with open(tmp_path, "rb") as fh:
            _keep_remote(storage, relpath, lambda: File(fh))
        tmp_path.unlink(missing_ok=True)
    return StoredFile(sha256=sha, size=size, relpath=relpath)


def write_blob(data: bytes) -> StoredFile:
    sha = hashlib.sha256(data).hexdigest()
    relpath = blob_relpath(sha)
    storage = mail_storage()
    local = local_root(storage)
    if local is not None:
        if not _refresh(local / relpath, len(data)):
            with _spool_file(local) as fh, _removed_on_error(fh):
                fh.write(data)
                fh.flush()
                if not durability.defer():
                    os.fsync(fh.fileno())
            _rename_into_place(Path(fh.name), local / relpath)
    else:
        _keep_remote(storage, relpath, lambda: ContentFile(data))
    return StoredFile(sha256=sha, size=len(data), relpath=relpath)


def replace_file(relpath: str, data: BinaryIO) -> None:
    """Write a stored file again, whether or not one is there (repairing a damaged file).

    On the local store the new bytes go to a temp file, are made durable and renamed over
    the old name: a reader sees the old file or the whole new one, never part of it.
    ``data`` must hold the content its name says; the caller has checked its hash.
    """
    storage = mail_storage()
    local = local_root(storage)
    if local is None:
        if storage.get_available_name(check_relpath(relpath)) != relpath:
            storage.delete(relpath)  # a backend that keeps what is there: make room for the good copy
        _save_remote(storage, relpath, File(data))
        return
    dest = local / check_relpath(relpath)
    fh = _spool_file(local)
    try:
        with fh:
            while chunk := data.read(1024 * 1024):
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        _rename_into_place(Path(fh.name), dest)
    except BaseException:
        Path(fh.name).unlink(missing_ok=True)  # a full disk, say: no partial file anywhere
        raise


def _keep_remote(storage: Storage, relpath: str, content: Callable[[], File]) -> None:
    """Store a file on a remote storage, or mark the copy already there as just stored.

    A backend that overwrites in place (S3 with ``file_overwrite``, as configured)
    writes it again: its new modification time keeps the collector away while the
    row that will reference it is committed. Any other backend keeps the copy it has.
    """
    if storage.get_available_name(relpath) == relpath:  # absent, or overwritten in place
        _save_remote(storage, relpath, content())


def _save_remote(storage: Storage, relpath: str, content: File) -> None:
    saved = storage.save(relpath, content)
    if saved != relpath:  # a backend that renames on conflict would break content addressing
        storage.delete(saved)
        raise OSError(f"mail storage saved {relpath!r} as {saved!r}")


def _message_row(
    account: MailAccount, uidl: str, raw: StoredFile, parsed: ParsedMessage, now, category: int | None = None
) -> Message:
    return Message(
        owner_id=account.owner_id,
        account=account,
        uidl=uidl,
        sha256=raw.sha256,
        size=raw.size,
        raw_path=raw.relpath,
        subject=parsed.subject,
        from_name=parsed.from_name[:255],
        from_email=parsed.from_email[:320],
        to=parsed.to,
        cc=parsed.cc,
        date=parsed.date or now,
        message_id=parsed.message_id[:998],
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        snippet=parsed.snippet[:255],
        search_text=parsed.search_text,
        parse_notice=parsed.parse_notice[:500],
        has_attachments=any(not (att.inline and att.content_id) for att in parsed.attachments),
        received_at=now,
        folder=account.deliver_to or "inbox",
        message_key=threads.clean_id(parsed.message_id)[:255],
        thread_subject=threads.normalize_subject(parsed.subject),
        list_unsubscribe=list_headers.parse(
            parsed.list_unsubscribe, parsed.list_unsubscribe_post, parsed.list_id
        ).as_json(),
        category=category,
    )


def _attachment_rows(message: Message, blobs) -> list[Attachment]:
    return [
        Attachment(
            message=message,
            filename=att.filename[:255],
            content_type=att.content_type[:255],
            size=blob.size,
            content_id=att.content_id[:255],
            inline=att.inline,
            sha256=blob.sha256,
            stored_path=blob.relpath,
        )
        for att, blob in blobs
    ]


def save_message(
    account: MailAccount, uidl: str, raw: StoredFile, parsed: ParsedMessage, *, scan: bool = True
) -> Message | None:
    """Create the Message and its Attachment rows in one transaction.

    Returns None when (account, uidl) is already stored: a concurrent or
    earlier sync won, and that copy stands. ``scan``: queue its spam scan
    (when a filter applies to the account), in the same transaction.
    """
    blobs = [(att, write_blob(att.data)) for att in parsed.attachments]
    try:
        with transaction.atomic():
            (category,) = tabs.for_new(account.owner_id, [parsed])
            message = _message_row(account, uidl, raw, parsed, timezone.now(), category)
            message.save(force_insert=True)
            Attachment.objects.bulk_create(_attachment_rows(message, blobs))
            if scan:
                spam_queue.scan_later(account, [message])
            pagecache.touch([account.owner_id])
    except IntegrityError:
        if Message.objects.filter(account=account, uidl=uidl).exclude(server_state="gone").exists():
            return None
        raise
    return message


def write_attachments(parsed: ParsedMessage) -> list[tuple]:
    """Store a message's attachment bytes (once per content hash); pairs for ``save_messages``."""
    return [(att, write_blob(att.data)) for att in parsed.attachments]


def _own_conversations(rows: list[Message]) -> bool:
    """On PostgreSQL: ids from the sequence now, so each row is inserted as its own conversation.

    ``threads.assign`` then rewrites only the rows that join another
    conversation, instead of updating every new row after the insert.
    """
    if not rows or connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Message._meta.db_table, len(rows)],
        )
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            row.id = row.thread_id = pk
    return True


def save_messages(
    account: MailAccount,
    items: list[tuple[str, StoredFile, ParsedMessage]],
    attachments: list[list[tuple]] | None = None,
    *,
    scan: bool = True,
) -> list[Message]:
    """Create many messages and their attachments in one transaction: one commit per batch.

    All or nothing: an IntegrityError (a concurrent sync stored one of them)
    or any other database error rolls the whole batch back, and the caller
    stores the messages one by one with ``save_message`` instead. ``scan``: queue
    their spam scans (when a filter applies to the account) in the same transaction.
    """
    if attachments is None:
        attachments = [write_attachments(parsed) for _uidl, _raw, parsed in items]
    prepared = [(uidl, raw, parsed, blobs) for (uidl, raw, parsed), blobs in zip(items, attachments, strict=True)]
    now = timezone.now()
    with transaction.atomic():
        sorted_into = tabs.for_new(account.owner_id, [parsed for _uidl, _raw, parsed, _blobs in prepared])
        rows = [
            _message_row(account, uidl, raw, parsed, now, category)
            for (uidl, raw, parsed, _blobs), category in zip(prepared, sorted_into, strict=True)
        ]
        if _own_conversations(rows):
            pgcopy.copy_in(Message, rows)  # the ids are known: COPY, much cheaper than a multi-row INSERT
            messages = rows
        else:
            messages = Message.objects.bulk_create(rows)
        if messages:
            pagecache.touch([account.owner_id])
        attachment_rows = [
            row
            for message, (*_rest, blobs) in zip(messages, prepared, strict=True)
            for row in _attachment_rows(message, blobs)
        ]
        if connection.vendor == "postgresql":
            pgcopy.copy_in(Attachment, attachment_rows)
        else:
            Attachment.objects.bulk_create(attachment_rows)
        if scan:
            spam_queue.scan_later(account, messages)
    return messages
