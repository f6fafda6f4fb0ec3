"""Import of .eml and .mbox files into a folder, stored like fetched mail.

Each message is spooled to a temp file in the store (CRLF line endings, as a
POP3 server sends it), verified and moved in like a synced one, under the
UIDL ``import:<sha256>`` so importing the same file twice stores it once.
Its ``server_state`` is "gone": it was never on the server, so no deletion
policy can ever send a DELE for it. Work goes in batches: one syncfs and one
transaction per batch, a bad message fails alone (invariant 3).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.db import transaction
from django.utils.translation import gettext, ngettext

from accounts.models import MailAccount

from . import mbox, mime, store, threads
from .models import Message, ServerState

log = logging.getLogger(__name__)

BATCH_MESSAGES = 100
BATCH_BYTES = 32 * 1024 * 1024  # parsed attachments of a batch are held in memory until its rows commit
_LINE_END = re.compile(rb"\r?\n")


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        numbers = {"imported": self.imported, "count": self.duplicates}
        if not self.failed:
            return (
                ngettext(
                    "Imported %(imported)d, skipped %(count)d duplicate.",
                    "Imported %(imported)d, skipped %(count)d duplicates.",
                    self.duplicates,
                )
                % numbers
            )
        shown = "; ".join(self.failed[:10])
        if len(self.failed) > 10:
            shown += gettext("; and %(count)d more") % {"count": len(self.failed) - 10}
        text = ngettext(
            "Imported %(imported)d, skipped %(count)d duplicate, %(failed)d failed: %(shown)s.",
            "Imported %(imported)d, skipped %(count)d duplicates, %(failed)d failed: %(shown)s.",
            self.duplicates,
        )
        return text % {**numbers, "failed": len(self.failed), "shown": shown}


class _TooLarge(ValueError):
    pass


@dataclass
class _Spooled:
    name: str
    tmp: Path
    size: int
    sha256: str

    @property
    def uidl(self) -> str:
        return f"import:{self.sha256}"


def _crlf(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Normalize line endings to CRLF across chunk boundaries (a CR may end one chunk, its LF start the next)."""
    carry = b""
    for chunk in chunks:
        chunk = carry + chunk
        carry = b"\r" if chunk.endswith(b"\r") else b""
        if carry:
            chunk = chunk[:-1]
        yield _LINE_END.sub(b"\r\n", chunk)
    if carry:
        yield carry


def _spool(name: str, chunks: Iterable[bytes], limit: int) -> _Spooled:
    """Write ``chunks`` to a temp file in the store (not fsynced: the batch's syncfs covers it)."""
    digest, size = hashlib.sha256(), 0
    with store.temp_file() as fh:
        try:
            for piece in _crlf(chunks):
                size += len(piece)
                if size > limit:
                    text = gettext("%(name)s: larger than the limit of %(limit)s bytes")
                    raise _TooLarge(text % {"name": name, "limit": f"{limit:,}"})
                digest.update(piece)
                fh.write(piece)
        except BaseException:
            fh.close()
            Path(fh.name).unlink(missing_ok=True)
            raise
    if size == 0:
        Path(fh.name).unlink(missing_ok=True)
        raise ValueError(gettext("%(name)s: empty") % {"name": name})
    return _Spooled(name, Path(fh.name), size, digest.hexdigest())


def _is_mbox(name: str, fh: BinaryIO) -> bool:
    if name.lower().endswith((".mbox", ".mbx")):
        return True
    start = fh.read(5)
    fh.seek(0)
    return start == b"From "


def _messages(name: str, fh: BinaryIO, limit: int) -> Iterator[_Spooled | str]:
    """Each message of one upload, spooled; a string for a message that failed."""
    if not _is_mbox(name, fh):
        try:
            yield _spool(name, iter(lambda: fh.read(1024 * 1024), b""), limit)
        except ValueError as exc:
            yield str(exc)
        return
    found = False
    for number, raw in enumerate(mbox.split_mbox(fh), 1):
        found = True
        try:
            yield _spool(gettext("%(name)s message %(number)d") % {"name": name, "number": number}, [raw], limit)
        except ValueError as exc:
            yield str(exc)
    if not found:
        yield gettext("%(name)s: no messages found") % {"name": name}


def import_files(account: MailAccount, folder: str, uploads: Iterable[tuple[str, BinaryIO]]) -> ImportReport:
    """Import every message of ``uploads`` (name, binary file) into ``folder``, filed under ``account``.

    The caller checks that ``account`` and ``folder`` belong to the user.
    """
    report = ImportReport()
    limit = account.effective_max_message_bytes
    batch: list[_Spooled] = []
    try:
        for name, fh in uploads:
            for item in _messages(name, fh, limit):
                if isinstance(item, str):
                    report.failed.append(item)
                    continue
                batch.append(item)
                if len(batch) >= BATCH_MESSAGES or sum(s.size for s in batch) >= BATCH_BYTES:
                    _store_batch(account, folder, batch, report)
                    batch = []
        if batch:
            _store_batch(account, folder, batch, report)
            batch = []
    finally:
        for item in batch:  # an unexpected error: leave no temp files behind
            item.tmp.unlink(missing_ok=True)
    return report


def _store_batch(account: MailAccount, folder: str, batch: list[_Spooled], report: ImportReport) -> None:
    uidls = [item.uidl for item in batch]
    known = set(Message.objects.filter(account=account, uidl__in=uidls).values_list("uidl", flat=True))
    ready: list[tuple[str, store.StoredFile, mime.ParsedMessage]] = []
    with store.batch_durability():
        for item in batch:
            try:
                if item.uidl in known:
                    report.duplicates += 1
                    continue
                known.add(item.uidl)  # the same message twice in one upload
                raw = store.commit_raw(item.tmp, expected_size=item.size, expected_sha256=item.sha256)
                with store.open_file(raw.relpath) as fh:
                    ready.append((item.uidl, raw, mime.parse_file(fh)))
            except Exception as exc:  # one bad message never blocks the rest
                log.exception("import failed account=%s item=%s", account.id, item.name)
                report.failed.append(f"{item.name}: {type(exc).__name__}: {exc}")
            finally:
                item.tmp.unlink(missing_ok=True)
        attachments = [store.write_attachments(parsed) for _uidl, _raw, parsed in ready]
    if not ready:
        return
    with transaction.atomic():
        # Serialize imports into one account, so two at once cannot store the same message twice
        # (the unique constraint does not cover "gone" rows).
        MailAccount.objects.select_for_update().filter(id=account.id).first()
        taken = set(
            Message.objects.filter(account=account, uidl__in=[uidl for uidl, _r, _p in ready]).values_list(
                "uidl", flat=True
            )
        )
        fresh = [(item, blobs) for item, blobs in zip(ready, attachments, strict=True) if item[0] not in taken]
        report.duplicates += len(ready) - len(fresh)
        stored = store.save_messages(account, [item for item, _b in fresh], [blobs for _i, blobs in fresh])
        Message.objects.filter(id__in=[m.id for m in stored]).update(folder=folder, server_state=ServerState.GONE)
    for message in stored:
        message.folder, message.server_state = folder, ServerState.GONE
    report.imported += len(stored)
    try:
        threads.assign(stored)
    except Exception:  # conversations are a convenience: the messages are stored
        log.exception("threading failed after import account=%s", account.id)
