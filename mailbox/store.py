"""Durable storage of raw messages and attachments, and the rows that point at them.

Files are content-addressed by SHA-256 under ``WEBPOP_MAIL_DIR`` in sharded
folders (``raw/ab/cd/<sha>.eml``, ``att/ab/cd/<sha>``) and written atomically:
temp file in the same file system, fsync, rename, fsync the folder. A row is
committed only after its file is in place, so a committed row never points at
a missing file; a crash between the two leaves an unreferenced file at worst.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import MailAccount

from .mime import ParsedMessage
from .models import Attachment, Message


class VerificationError(Exception):
    """The bytes on disk are not the bytes the server sent."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    relpath: str


def root() -> Path:
    return Path(settings.WEBPOP_MAIL_DIR)


def path_of(relpath: str) -> Path:
    path = (root() / relpath).resolve()
    if root().resolve() not in path.parents:
        raise ValueError(f"{relpath!r} is outside the mail store")
    return path


def temp_file() -> BinaryIO:
    """An open temp file on the store's file system (so rename is atomic)."""
    tmp = root() / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return tempfile.NamedTemporaryFile(dir=tmp, prefix="in-", suffix=".part", delete=False)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _place(tmp_path: Path, relpath: str) -> None:
    dest = root() / relpath
    if dest.exists():
        # Same name means same content: keep the one already durable.
        tmp_path.unlink(missing_ok=True)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp_path, dest)
    _fsync_dir(dest.parent)


def commit_raw(tmp_path: Path, *, expected_size: int, expected_sha256: str) -> StoredFile:
    """Verify a fully written, fsynced temp file and move it into the store."""
    size, sha = hash_file(tmp_path)
    if size != expected_size or sha != expected_sha256:
        raise VerificationError(
            f"stored bytes differ from received bytes (size {size} vs {expected_size}, sha256 {sha[:12]}…)"
        )
    relpath = f"raw/{sha[:2]}/{sha[2:4]}/{sha}.eml"
    _place(tmp_path, relpath)
    return StoredFile(sha256=sha, size=size, relpath=relpath)


def write_blob(data: bytes) -> StoredFile:
    sha = hashlib.sha256(data).hexdigest()
    relpath = f"att/{sha[:2]}/{sha[2:4]}/{sha}"
    if not (root() / relpath).exists():
        with temp_file() as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _place(Path(fh.name), relpath)
    return StoredFile(sha256=sha, size=len(data), relpath=relpath)


def save_message(account: MailAccount, uidl: str, raw: StoredFile, parsed: ParsedMessage) -> Message | None:
    """Create the Message and its Attachment rows in one transaction.

    Returns None when (account, uidl) is already stored: a concurrent or
    earlier sync won, and that copy stands.
    """
    blobs = [(att, write_blob(att.data)) for att in parsed.attachments]
    now = timezone.now()
    try:
        with transaction.atomic():
            message = Message.objects.create(
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
                message_id=parsed.message_id,
                in_reply_to=parsed.in_reply_to,
                references=parsed.references,
                snippet=parsed.snippet[:255],
                has_attachments=any(not att.inline or not att.content_id for att in parsed.attachments),
                received_at=now,
            )
            Attachment.objects.bulk_create(
                Attachment(
                    message=message,
                    filename=att.filename[:255],
                    content_type=att.content_type[:255],
                    size=blob.size,
                    content_id=att.content_id[:255],
                    sha256=blob.sha256,
                    stored_path=blob.relpath,
                )
                for att, blob in blobs
            )
    except IntegrityError:
        if Message.objects.filter(account=account, uidl=uidl).exists():
            return None
        raise
    return message
