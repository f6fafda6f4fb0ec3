"""Uploads waiting to be imported: kept in the mail storage under ``imports/`` until their job ends.

The mail storage is what every machine shares (a folder or a shared volume,
or an S3 bucket), so any worker can read an upload the web server received.
An upload arrives as a temp file in the store's own temp folder
(mailbox/views_import.py writes it there as the request streams in): on the
local storage it is moved into place with a rename, never copied or read
back; a remote storage gets it streamed from that file.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.utils import timezone

from . import store

FOLDER = "imports"
GRACE = dt.timedelta(days=1)  # an upload no job names is freed after this long (a request that died half-way)


def new_prefix() -> str:
    """A fresh name prefix for one job's uploads (``imports/<random>-``)."""
    return f"{FOLDER}/{secrets.token_hex(16)}-"


def keep(temp_path: Path, name: str) -> None:
    """Put the temp file ``temp_path`` (in the store's temp folder) into the storage as ``name``; durable."""
    storage = store.mail_storage()
    if isinstance(storage, FileSystemStorage):
        dest = Path(storage.path(name))
        try:
            os.replace(temp_path, dest)
        except FileNotFoundError:
            if not temp_path.exists():
                raise
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp_path, dest)
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself: the file's bytes were synced when the upload ended
        finally:
            os.close(fd)
        return
    with open(temp_path, "rb") as fh:
        saved = storage.save(name, File(fh))
    temp_path.unlink(missing_ok=True)
    if saved != name:
        storage.delete(saved)
        raise OSError(f"mail storage saved {name!r} as {saved!r}")


def open_upload(name: str) -> BinaryIO:
    """Open a kept upload for reading (binary reads and seeks only). Raises OSError if it is missing."""
    storage = store.mail_storage()
    if isinstance(storage, FileSystemStorage):
        return open(storage.path(name), "rb")
    if not storage.exists(name):
        raise FileNotFoundError(name)
    return storage.open(name, "rb")


def size_of(name: str) -> int:
    return store.mail_storage().size(name)


def delete(names: Iterable[str]) -> None:
    storage = store.mail_storage()
    for name in names:
        if name.startswith(f"{FOLDER}/"):
            storage.delete(name)


def sweep(wanted: set[str], *, grace: dt.timedelta = GRACE) -> list[str]:
    """Free kept uploads no unfinished job names, older than ``grace``; returns their names."""
    storage = store.mail_storage()
    try:
        _dirs, files = storage.listdir(FOLDER)
    except (FileNotFoundError, NotADirectoryError):
        return []
    freed = []
    cutoff = timezone.now() - grace
    for filename in files:
        name = f"{FOLDER}/{filename}"
        if name in wanted:
            continue
        try:
            modified = storage.get_modified_time(name)
        except (OSError, NotImplementedError):
            continue
        if timezone.is_naive(modified):
            modified = timezone.make_aware(modified, dt.UTC)
        if modified < cutoff:
            storage.delete(name)
            freed.append(name)
    return freed
