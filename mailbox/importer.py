"""The import engine: .eml and .mbox uploads go into a folder in the background, stored like fetched mail.

The web request keeps the upload in the mail storage and queues an
:class:`~mailbox.models.ImportJob` (``actions.start_import``); a worker runs
:func:`run`, and a beat sweep (:func:`resume_stalled`) finds jobs whose task
was lost or whose worker stopped (invariant 8).

* The job is claimed with a conditional UPDATE: one worker at a time holds
  its lease, renews it while it works, and another takes it over when it
  lapses or (on the same host) when its holder died.
* Each upload is streamed through mailbox/mboxsplit.py (linear time, bounded
  memory) and each message spooled to a temp file in the store, with CRLF
  line ends as a POP3 server sends it. A message over the account's size
  limit is streamed past without being held, and refused with its reason.
* Batches go in like synced mail: raw files verified and moved into the
  content-addressed store, parsed, attachments stored, one syncfs, then the
  rows in one transaction together with the job's resume point and counts.
  A killed import resumes after its last committed batch and stores
  nothing twice.

A message is stored under the UIDL ``import:<sha256>``, so importing the same
message again stores nothing (it counts as a duplicate). Its ``server_state``
is "gone": it was never on a server, so no deletion policy can send a DELE for
it. A bad message fails alone (invariant 3). A job that cannot go on (storage
quota full, upload gone, stopped too often) ends "failed" with its reason;
what was imported before stays.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import MailAccount

from . import durability, folders, joblease, mboxsplit, mime, quota, store, threads, uploads
from .models import Folder, ImportJob, Message, ServerState

log = logging.getLogger(__name__)

BATCH_MESSAGES = 200
# Raw bytes per batch: bounds what a batch holds in memory (parsed rows; attachments are written and dropped at once).
BATCH_BYTES = 8 * 1024 * 1024
REFUSALS_KEPT = 200  # reasons listed on the job page; the count goes on
MAX_ATTEMPTS = 5  # claims of one job; a job that stops its worker this often fails with the reason
RENEW_SECONDS = 5.0  # lease renewal and progress, while a batch is read
STALE_QUEUED = dt.timedelta(minutes=5)  # a queued job this old lost its task (or waits behind others: harmless)

State = ImportJob.State


class LeaseLost(Exception):
    """Another worker took the job over: stop without committing."""


class JobFailed(Exception):
    def __init__(self, error_class: str, detail: str = ""):
        super().__init__(error_class, detail)
        self.error_class, self.detail = error_class, detail


# --- Claiming ---------------------------------------------------------------------------------


def _lease_seconds() -> int:
    return settings.WEBPOP_IMPORT_LEASE_SECONDS


def claim(job_id: int, now: dt.datetime | None = None) -> str | None:
    """Take the job's lease with a conditional UPDATE; None when it is held, finished or used up."""
    now = now or timezone.now()
    return joblease.claim(
        ImportJob,
        job_id,
        lease_seconds=_lease_seconds(),
        max_attempts=MAX_ATTEMPTS,
        label="import",
        now=now,
        started_at=Coalesce("started_at", now),
    )


# --- Running ----------------------------------------------------------------------------------


def run(job_id: int) -> str:
    """Run (or resume) one import if this worker wins its claim; returns the state it reached, or "skipped"."""
    token = claim(job_id)
    if token is None:
        return "skipped"
    job = ImportJob.objects.select_related("account").filter(id=job_id).first()
    if job is None:
        return "skipped"  # deleted with its account meanwhile
    engine = _Import(job, token)
    try:
        try:
            engine.run()
        finally:
            engine.discard_pending()
    except LeaseLost:
        log.warning("import %s: lease lost, another worker continues", job_id)
        return "lost"
    except JobFailed as exc:
        engine.finish(State.FAILED, exc.error_class, exc.detail)
        return State.FAILED
    except Exception as exc:
        log.exception("import %s failed", job_id)
        engine.finish(State.FAILED, "internal", type(exc).__name__)
        return State.FAILED
    engine.finish(State.DONE)
    return State.DONE


@dataclass
class _Entry:
    """One message of an upload, spooled or refused, and where the job resumes before and after it."""

    label: dict  # {"file": name, "number": n or None}: how the job page names it
    before: tuple[int, int, int]  # (file index, offset, messages of the file before it)
    after: tuple[int, int, int]
    spool: _Spool | None = None
    reason: str = ""  # a refusal: too_large, empty, no_messages, unreadable
    detail: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def uidl(self) -> str:
        return f"import:{self.spool.sha256}"

    def refuse(self, reason: str, detail: str = "", **extra) -> None:
        if self.spool is not None:
            self.spool.discard()
        self.spool, self.reason, self.detail, self.extra = None, reason, detail, extra


class _Spool:
    """A message on its way to the store: a temp file, its size and SHA-256; past ``limit`` only counted."""

    def __init__(self, limit: int):
        self.fh = store.temp_file()
        self.path = Path(self.fh.name)
        self.digest = hashlib.sha256()
        self.size, self.limit, self.too_large = 0, limit, False

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.too_large:
            return
        if self.size > self.limit:
            self.too_large = True
            self.discard()  # streamed past from here on, never held
            return
        self.digest.update(data)
        self.fh.write(data)

    def close(self) -> None:
        self.fh.close()  # not fsynced here: the batch's syncfs covers it
        self.sha256 = self.digest.hexdigest()

    def discard(self) -> None:
        self.fh.close()
        self.path.unlink(missing_ok=True)


class _Import:
    def __init__(self, job: ImportJob, token: str):
        self.job, self.token = job, token
        self.account: MailAccount = job.account
        self.limit = self.account.effective_max_message_bytes
        self.pending: list[_Entry] = []
        self.pending_bytes = 0
        self.refusals = list(job.refusals)
        self.position = job.bytes_done  # bytes gone through, for the progress bar
        self.renewed = time.monotonic()
        self.quota_left: int | None = None
        self.current: _Spool | None = None  # the message being read

    # The walk over the uploads -------------------------------------------------------

    def run(self) -> None:
        job = self.job
        self.quota_left = quota.left(job.owner_id)
        if self.quota_left is not None and self.quota_left <= 0:
            raise JobFailed("quota")
        offset_before = sum(f["size"] for f in job.files[: job.file_index])
        for index in range(job.file_index, len(job.files)):
            info = job.files[index]
            resuming = index == job.file_index
            start, number = (job.file_offset, job.file_messages) if resuming else (0, 0)
            self.base = offset_before
            with self._open(info) as fh:
                if _is_mbox(info["name"], fh):
                    fh.seek(start)
                    spans = mboxsplit.split_mbox(fh, self._new_spool, start=start, on_read=self._read)
                    for span in spans:
                        number += 1
                        label = {"file": info["name"], "number": number}
                        self._add(_Entry(label, (index, span.start, number - 1), (index, span.end, number)), span)
                    if start == 0 and number == 0:
                        entry = _Entry({"file": info["name"], "number": None}, (index, 0, 0), (index + 1, 0, 0))
                        entry.refuse("no_messages")
                        self._add(entry)
                elif start == 0:
                    span = mboxsplit.read_eml(fh, self._new_spool, on_read=self._read)
                    self._add(_Entry({"file": info["name"], "number": None}, (index, 0, 0), (index + 1, 0, 0)), span)
            offset_before += info["size"]
            self.position = offset_before
            if self.pending:
                self.pending[-1].after = (index + 1, 0, 0)  # the file is done once its last entry is committed
        self._commit(end=(len(job.files), 0, 0))

    def _open(self, info: dict) -> BinaryIO:
        try:
            if uploads.size_of(info["path"]) != info["size"]:
                raise JobFailed("upload", info["name"])
            return uploads.open_upload(info["path"])
        except OSError:
            raise JobFailed("upload", info["name"]) from None

    def _new_spool(self, _start: int) -> _Spool:
        self.current = _Spool(self.limit)
        return self.current

    def _read(self, _position: int) -> None:
        """After each chunk read: the lease renewed now and then (with the progress), however long a message."""
        if time.monotonic() - self.renewed >= RENEW_SECONDS:
            self._renew()

    def _renew(self, **fields) -> None:
        bytes_done = min(self.position, self.job.total_bytes)
        if not joblease.renew(ImportJob, self.job.id, self.token, lease_seconds=_lease_seconds(), bytes_done=bytes_done,
                              **fields):  # fmt: skip
            raise LeaseLost(f"import {self.job.id}")
        self.renewed = time.monotonic()

    def _add(self, entry: _Entry, span: mboxsplit.Span | None = None) -> None:
        self.current = None
        if span is not None:
            self.position = self.base + span.end
            spool = span.sink
            if spool is not None and spool.too_large:
                entry.refuse("too_large", size=spool.size, limit=self.limit)
            elif spool is None or spool.size == 0:
                if spool is not None:
                    spool.discard()
                entry.refuse("empty")
            else:
                spool.close()
                entry.spool = spool
                self.pending_bytes += spool.size
        self.pending.append(entry)
        if len(self.pending) >= BATCH_MESSAGES or self.pending_bytes >= BATCH_BYTES:
            self._commit()

    def discard_pending(self) -> None:
        """After an error: no temp file stays behind."""
        spools = [entry.spool for entry in self.pending if entry.spool is not None]
        for spool in [*spools, self.current]:
            if spool is not None:
                spool.discard()
        self.pending, self.pending_bytes, self.current = [], 0, None

    # A batch into the store ----------------------------------------------------------------

    def _commit(self, end: tuple[int, int, int] | None = None) -> None:
        """Store the pending batch and move the resume point past it, in one transaction."""
        batch, self.pending, self.pending_bytes = self.pending, [], 0
        account = self.account
        spooled = [e for e in batch if e.spool is not None]
        known = set(
            Message.objects.filter(account=account, uidl__in=[e.uidl for e in spooled]).values_list("uidl", flat=True)
        )
        duplicates = 0
        ready: list[tuple[_Entry, store.StoredFile, mime.ParsedMessage, list]] = []
        quota_stop: _Entry | None = None
        with durability.batch_durability():
            for entry in spooled:
                spool = entry.spool
                if quota_stop is not None:
                    spool.discard()
                    continue
                if entry.uidl in known:
                    duplicates += 1
                    entry.spool = None
                    spool.discard()
                    continue
                if self.quota_left is not None and spool.size > self.quota_left:
                    quota_stop = entry  # nothing from here on: the job ends before this message
                    spool.discard()
                    continue
                known.add(entry.uidl)  # the same message twice in one upload
                try:
                    raw = store.commit_raw(spool.path, expected_size=spool.size, expected_sha256=spool.sha256)
                    with store.open_file(raw.relpath) as fh:
                        parsed = mime.parse_file(fh)
                    blobs = store.write_attachments(parsed)
                except Exception as exc:  # one bad message never blocks the rest
                    log.exception("import %s: %s could not be stored", self.job.id, entry.label)
                    entry.refuse("unreadable", type(exc).__name__)  # the log has the rest (paths stay there)
                    continue
                finally:
                    spool.path.unlink(missing_ok=True)
                _slim(parsed)
                if self.quota_left is not None:
                    self.quota_left -= spool.size
                ready.append((entry, raw, parsed, blobs))
        if quota_stop is not None:
            batch = batch[: batch.index(quota_stop)]
            end = quota_stop.before
        stored = self._save(ready, batch, duplicates, end or (batch[-1].after if batch else None))
        try:
            threads.assign(stored)
        except Exception:  # conversations are a convenience: the messages are stored
            log.exception("threading failed after import %s", self.job.id)
        if quota_stop is not None:
            raise JobFailed("quota")

    def _save(self, ready: list, batch: list[_Entry], duplicates: int, resume: tuple[int, int, int] | None) -> list:
        account, job = self.account, self.job
        refused = [e for e in batch if e.reason]
        for entry in refused:
            if len(self.refusals) < REFUSALS_KEPT:
                self.refusals.append({**entry.label, "reason": entry.reason, "detail": entry.detail, **entry.extra})
        stored: list[Message] = []
        with transaction.atomic():
            # Imports into one account take turns, so two at once cannot store the same message
            # twice (the unique constraint does not cover "gone" rows).
            MailAccount.objects.select_for_update().filter(id=account.id).first()
            taken = set(
                Message.objects.filter(account=account, uidl__in=[entry.uidl for entry, *_ in ready]).values_list(
                    "uidl", flat=True
                )
            )
            fresh = [item for item in ready if item[0].uidl not in taken]
            duplicates += len(ready) - len(fresh)
            if fresh:
                stored = store.save_messages(
                    account,
                    [(entry.uidl, raw, parsed) for entry, raw, parsed, _b in fresh],
                    [b for *_r, b in fresh],
                    scan=False,  # filed where the user chose, from files the user had: not new mail to judge
                )
                folder = _target_folder(job)
                # In save_messages' transaction: its page-cache touch at commit covers this too.
                Message.objects.filter(id__in=[m.id for m in stored]).update(
                    folder=folder, server_state=ServerState.GONE
                )
                for message in stored:
                    message.folder, message.server_state = folder, ServerState.GONE
            counts = {
                "imported": F("imported") + len(stored),
                "duplicates": F("duplicates") + duplicates,
                "refused": F("refused") + len(refused),
                "refusals": self.refusals,
            }
            if resume is not None:
                counts.update(file_index=resume[0], file_offset=resume[1], file_messages=resume[2])
            self._renew(**counts)  # raises LeaseLost when another worker has the job: nothing is committed
        log.info("import %s batch stored=%s duplicates=%s refused=%s", job.id, len(stored), duplicates, len(refused))
        return stored

    # The end ---------------------------------------------------------------------------------

    def finish(self, state: str, error_class: str = "", detail: str = "") -> None:
        job = self.job
        fields = {"error_class": error_class, "error": detail[:2000]}
        if state == State.DONE:
            fields["bytes_done"] = job.total_bytes
        ended = joblease.release(ImportJob, job.id, self.token, state, **fields)
        log.info("import %s %s %s", job.id, state, error_class or "")
        if ended:
            _free_uploads(job)


def forget_uploads(jobs: QuerySet[ImportJob]) -> None:
    """Free the uploads of ``jobs``, deleted with their owner or account, once that deletion commits.

    A worker still importing one stops at its next renewal: the job row is gone.
    """
    paths = [f["path"] for files in jobs.values_list("files", flat=True) for f in files]
    if paths:
        transaction.on_commit(lambda: uploads.delete(paths), robust=True)


def _free_uploads(job: ImportJob) -> None:
    try:
        uploads.delete(f["path"] for f in job.files)
    except OSError:  # the sweep frees them later
        log.exception("could not free the uploads of import %s", job.id)


def _slim(parsed: mime.ParsedMessage) -> None:
    """Drop what the rows do not need once the attachments are stored: a batch holds only its rows' text."""
    for attachment in parsed.attachments:
        attachment.data = b""
    parsed.text_body = parsed.html_body = ""


def _is_mbox(name: str, fh: BinaryIO) -> bool:
    if name.lower().endswith((".mbox", ".mbx")):
        return True
    start = fh.read(5)
    fh.seek(0)
    return start == b"From "


def _target_folder(job: ImportJob) -> str:
    """The job's folder; the Inbox when that folder was deleted meanwhile (as its messages went there)."""
    if job.folder in dict(folders.SYSTEM_TARGETS) or folders.is_owned_slug(job.owner_id, job.folder):
        return job.folder
    return Folder.INBOX


# --- The beat sweep -----------------------------------------------------------------------------


def resume_stalled(now: dt.datetime | None = None) -> list[int]:
    """Jobs whose task was lost or whose worker stopped: ids to enqueue again; jobs stopped too often fail."""
    return joblease.stalled(
        ImportJob,
        max_attempts=MAX_ATTEMPTS,
        stale_queued=STALE_QUEUED,
        label="import",
        failed={"error_class": "stopped"},
        on_failed=_free_uploads,
        now=now,
    )


def sweep_uploads() -> list[str]:
    """Free kept uploads of finished jobs, and of requests that died before their job was saved."""
    active = ImportJob.objects.filter(state__in=ImportJob.ACTIVE)
    return uploads.sweep({f["path"] for files in active.values_list("files", flat=True) for f in files})
