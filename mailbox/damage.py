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
from collections.abc import Iterable
from typing import BinaryIO

from django.core.files import File
from django.db import IntegrityError, transaction

from . import store
from .models import DamagedFile, Message

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


def marked(relpaths: Iterable[str]) -> dict[str, str]:
    """``{relpath: kind}`` of these files that are marked damaged."""
    relpaths = [path for path in set(relpaths) if path]
    if not relpaths:
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
    # A body sanitized from these bytes may be wrong: render it again from the file once it is whole.
    Message.objects.filter(raw_path=relpath).exclude(html_cache_version=0).update(html_cache_version=0)


def clear(relpaths: Iterable[str]) -> int:
    relpaths = list(relpaths)
    if not relpaths:
        return 0
    return DamagedFile.objects.filter(relpath__in=relpaths).delete()[0]


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
