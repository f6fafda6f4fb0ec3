"""Stored files found missing or corrupt, and reading files so that a damaged one is never served.

A file is damaged when it is missing from the mail store or its bytes no longer hash to the
SHA-256 it is stored under (a failing disk, a bad restore, a hand edit). ``manage.py verifystore``
(:mod:`mailbox.verify`) checks every file and marks the damaged ones with a ``DamagedFile`` row;
a page that reads a file checks it too (:func:`open_checked`) and marks what it finds. Pages ask
for the marks and say the original is damaged instead of showing or sending wrong bytes. A mark
goes as soon as a check finds the file whole again: repaired from the POP3 server, restored from a
backup, or stored again by a sync that fetched the same content.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import BinaryIO

from django.core.cache import cache
from django.core.files import File
from django.db import IntegrityError, transaction

from webpop.lib import pagecache

from . import store
from .models import Attachment, DamagedFile, Message

log = logging.getLogger(__name__)

MISSING = DamagedFile.Kind.MISSING
CORRUPT = DamagedFile.Kind.CORRUPT


class DamagedFileError(OSError):
    """A stored file is missing or does not hash to its name: its bytes must not be served."""

    def __init__(self, relpath: str, kind: str):
        super().__init__(f"{relpath} is {kind}")
        self.relpath = relpath
        self.kind = kind


def check_file(relpath: str, sha256: str) -> tuple[str | None, int]:
    """Hash a stored file: ``(None, size)`` when whole, else ``("missing" | "corrupt", bytes read)``."""
    storage = store.mail_storage()
    local = store.local_root(storage)
    try:
        if local is not None:
            size, digest = store.hash_file(local / store.check_relpath(relpath))
        else:
            size, digest = _hash_remote(storage.open(store.check_relpath(relpath), "rb"))
    except FileNotFoundError:
        return MISSING, 0
    return (None if digest == sha256 else CORRUPT), size


def _hash_remote(fh: File | BinaryIO) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# Whether any file is marked at all, in the cache: a healthy store costs the message page no query.
# Marking sets it at once; a page that read "none" just before a mark was written may say so for
# up to ANY_TTL seconds (reading a file itself is always checked, see open_checked).
ANY_KEY = "damaged-files:any"
ANY_TTL = 60


def any_marked() -> bool:
    try:
        found = cache.get(ANY_KEY)
    except Exception:  # the cache being away costs a query, nothing else
        found = None
    if found is None:
        found = DamagedFile.objects.exists()
        _remember(found)
    return found


def _remember(found: bool) -> None:
    try:
        cache.set(ANY_KEY, found, ANY_TTL)
    except Exception:
        log.warning("cache unavailable for damaged-file marks")


def marked(relpaths: Iterable[str], *, fresh: bool = False) -> dict[str, str]:
    """``{relpath: kind}`` of these files that are marked damaged (``fresh``: not trusting the cache)."""
    relpaths = [path for path in set(relpaths) if path]
    if not relpaths or not (fresh or any_marked()):
        return {}
    return dict(DamagedFile.objects.filter(relpath__in=relpaths).values_list("relpath", "kind"))


def mark(relpath: str, sha256: str, kind: str) -> None:
    """Record a damaged file; its messages' sanitized bodies are made again once it is whole."""
    try:
        with transaction.atomic():
            updated = DamagedFile.objects.filter(relpath=relpath).update(kind=kind)
            if not updated:
                DamagedFile.objects.create(relpath=relpath, sha256=sha256, kind=kind)
    except IntegrityError:  # marked by a concurrent check meanwhile
        DamagedFile.objects.filter(relpath=relpath).update(kind=kind)
    _remember(True)
    # A body sanitized from these bytes may be wrong: render it again from the file once it is whole.
    rows = Message.objects.filter(sha256=sha256, raw_path=relpath)  # by the indexed hash first
    rows.exclude(html_cache_version=0).update(html_cache_version=0)
    _touch_owners([(relpath, sha256)])


def _touch_owners(files: Iterable[tuple[str, str]]) -> None:
    """Conversation pages show damage notices: those of the files' messages are out of date."""
    owners: set[int] = set()
    for relpath, sha256 in files:  # by the indexed hash first: a file is shared by content
        owners.update(Message.objects.filter(sha256=sha256, raw_path=relpath).values_list("owner_id", flat=True))
        owners.update(
            Attachment.objects.filter(sha256=sha256, stored_path=relpath).values_list("message__owner_id", flat=True)
        )
    pagecache.touch_message_pages(owners)


def clear(relpaths: Iterable[str]) -> int:
    relpaths = list(relpaths)
    if not relpaths:
        return 0
    marks = DamagedFile.objects.filter(relpath__in=relpaths)
    files = list(marks.values_list("relpath", "sha256"))
    deleted = marks.delete()[0]
    if deleted:
        _touch_owners(files)
        try:
            cache.delete(ANY_KEY)  # asked again next time
        except Exception:
            log.warning("cache unavailable for damaged-file marks")
    return deleted


def damaged_now(relpath: str, sha256: str, kind: str | None) -> str | None:
    """Whether a file marked ``kind`` (None: not marked) is damaged now; checks a marked file again.

    A page that would show what a marked file holds calls this: a file that is whole again loses
    its mark here, so restoring a backup needs no further step.
    """
    if kind is None:
        return None
    now, _size = check_file(relpath, sha256)
    if now is None:
        clear([relpath])
    elif now != kind:
        mark(relpath, sha256, now)
    return now


def read_whole(relpath: str, sha256: str) -> bytes:
    """A stored file's bytes, read once and hashed; raises :class:`DamagedFileError` without marking.

    For readers that hold a file in memory anyway (the spam scan, reply, forward): one read instead
    of :func:`open_checked`'s two, and no database write, so it may run in any thread.
    """
    try:
        with store.open_file(relpath) as fh:
            data = fh.read()
    except FileNotFoundError:
        raise DamagedFileError(relpath, MISSING) from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DamagedFileError(relpath, CORRUPT)
    return data


def read_checked(relpath: str, sha256: str) -> bytes:
    """:func:`read_whole`, marking a damaged file (and unmarking one found whole again)."""
    try:
        data = read_whole(relpath, sha256)
    except DamagedFileError as exc:
        mark(relpath, sha256, exc.kind)
        raise
    if marked([relpath]):
        clear([relpath])
    return data


def open_checked(relpath: str, sha256: str) -> File | BinaryIO:
    """Open a stored file to serve it whole; raises :class:`DamagedFileError` when it is damaged.

    On the local store the file is hashed before it is opened (reading it twice costs far
    less than sending it); a remote storage checks its own objects, so there only the marks
    and a missing object count. A missing or corrupt file found here is marked.
    """
    kind = marked([relpath]).get(relpath)
    local = store.local_root(store.mail_storage())
    if local is not None:
        now, _size = check_file(relpath, sha256)
    else:
        now = damaged_now(relpath, sha256, kind)
    if now is not None:
        if now != kind:
            mark(relpath, sha256, now)
        raise DamagedFileError(relpath, now)
    if kind is not None:
        clear([relpath])
    try:
        return store.open_file(relpath)
    except FileNotFoundError:  # gone between the check and the open, or from a remote storage
        mark(relpath, sha256, MISSING)
        raise DamagedFileError(relpath, MISSING) from None
