"""Checking every stored file against its content hash, and repairing the damaged ones.

``manage.py verifystore`` runs :func:`verify` and, with ``--repair``, :func:`repair`.

Every file a row references (the columns of :mod:`mailbox.storage_refs`) is read and hashed
once, in batches of distinct hashes taken in index order, so memory stays bounded however big
the store is. A file that is missing or does not hash to its name is marked damaged
(:mod:`mailbox.damage`: pages then say so instead of serving it); a marked file found whole
again loses its mark.

Repair never trusts a copy it has not hashed. An attachment's file is cut again from its
stored message when that message is whole (attachments are stored decoded, by the hash of
their bytes). A message's own file comes again from its POP3 server, by UIDL, when the server
still has it (its copy is ``on_server``: kept by the account's policy): the account's lease is
taken as for a sync (invariant 4), the login is the sync's, nothing is deleted, and the file is
replaced only when the server's bytes hash to the stored name, atomically
(``store.replace_file``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from accounts.models import MailAccount

from . import damage, mime, storage_refs, store, sync
from .models import Attachment, FetchFailure, Message, ServerState
from .pop3 import Pop3Error, Pop3ServerError

log = logging.getLogger(__name__)

BATCH = 500  # distinct contents per query and per progress line
RENEW_EVERY = 50  # messages fetched between renewals of an account's lease


@dataclass
class Damaged:
    relpath: str
    sha256: str
    kind: str  # damage.MISSING or damage.CORRUPT
    repaired: str = ""  # how: "server" or "message" (cut again from the stored message)
    why: str = ""  # why it was not repaired


@dataclass
class Report:
    files: int = 0
    bytes: int = 0
    damaged: list[Damaged] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class Affected:
    """A row that needs a damaged file, for the operator's report."""

    what: str  # "message", "attachment" or "quarantined"
    message_id: int | None
    user: str
    account: str
    subject: str


def stored_files(batch: int = BATCH) -> Iterator[list[tuple[str, str]]]:
    """Every file some row references, as ``(relpath, sha256)``, in batches; each file once."""
    hashed = [column for column in storage_refs.COLUMNS if column.sha256]
    for column in hashed:
        yield from _by_hash(column, batch)
    for column in storage_refs.COLUMNS:
        if not column.sha256:
            yield from _by_id(column, batch, hashed)


def _by_hash(column: storage_refs.FileColumn, batch: int) -> Iterator[list[tuple[str, str]]]:
    rows = column.rows()
    last = ""
    while True:
        shas = list(
            rows.filter(**{f"{column.sha256}__gt": last})
            .order_by(column.sha256)
            .values_list(column.sha256, flat=True)
            .distinct()[:batch]
        )
        if not shas:
            return
        last = shas[-1]
        pairs = rows.filter(**{f"{column.sha256}__in": shas}).values_list(column.path, column.sha256).distinct()
        yield sorted({(path, store.sha_of(path) or sha) for path, sha in pairs})


def _by_id(
    column: storage_refs.FileColumn, batch: int, hashed: list[storage_refs.FileColumn]
) -> Iterator[list[tuple[str, str]]]:
    """A column without a hash (it is in the path): by primary key, skipping files the ``hashed`` columns list."""
    rows = column.rows().order_by("pk")
    last = 0
    while True:
        chunk = list(rows.filter(pk__gt=last).values_list("pk", column.path)[:batch])
        if not chunk:
            return
        last = chunk[-1][0]
        paths = {path for _pk, path in chunk if store.sha_of(path)}
        shas = {store.sha_of(path) for path in paths}
        for earlier in hashed:  # each has a hash column (indexed): look the paths up by their hashes
            there = earlier.rows().filter(**{f"{earlier.sha256}__in": shas, f"{earlier.path}__in": paths})
            paths -= set(there.values_list(earlier.path, flat=True))
        yield sorted((path, store.sha_of(path)) for path in paths)


def verify(*, batch: int = BATCH, jobs: int = 4, progress: Callable[[Report], None] | None = None) -> Report:
    """Hash every stored file; mark the damaged ones and unmark those found whole again."""
    report = Report()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # reading and hashing release the GIL
        for files in stored_files(batch):
            marks = damage.marked((path for path, _sha in files), fresh=True)
            outcomes = pool.map(lambda item: damage.check_file(*item), files)
            whole = []
            for (relpath, sha), (kind, size) in zip(files, outcomes, strict=True):
                report.files += 1
                report.bytes += size
                if kind is not None:
                    report.damaged.append(Damaged(relpath, sha, kind))
                    if marks.get(relpath) != kind:
                        damage.mark(relpath, sha, kind)
                elif relpath in marks:
                    whole.append(relpath)
            damage.clear(whole)
            report.seconds = time.monotonic() - started
            if progress is not None:
                progress(report)
    report.seconds = time.monotonic() - started
    return report


def affected(item: Damaged) -> list[Affected]:
    """The messages (and quarantined downloads) that need this file."""
    found: list[Affected] = []
    messages = Message.objects.filter(sha256=item.sha256, raw_path=item.relpath)
    for m in messages.select_related("owner", "account").order_by("id"):
        found.append(Affected("message", m.id, m.owner.get_username(), _account(m.account), m.subject))
    attachments = Attachment.objects.filter(sha256=item.sha256, stored_path=item.relpath)
    for a in attachments.select_related("message__owner", "message__account").order_by("id"):
        m = a.message
        found.append(Affected("attachment", m.id, m.owner.get_username(), _account(m.account), m.subject))
    for f in FetchFailure.objects.filter(raw_path=item.relpath).select_related("account__owner").order_by("id"):
        found.append(Affected("quarantined", None, f.account.owner.get_username(), _account(f.account), f.subject))
    return found


def describe(row: Affected) -> str:
    """One line of the operators' report: which row needs the file."""
    message = f"message {row.message_id}" if row.message_id else "a quarantined download"
    what = " (an attachment)" if row.what == "attachment" else ""
    return f"{message}{what} of user {row.user}, account {row.account}: {row.subject or '(no subject)'}"


def _account(account: MailAccount) -> str:
    return f"{account.id} ({account.username}@{account.host})"


# --- Repair -----------------------------------------------------------------------------------


def repair(damaged: list[Damaged]) -> None:
    """Repair what can be repaired; each item says how (``repaired``) or why not (``why``)."""
    raws = [item for item in damaged if item.relpath.startswith("raw/")]
    _from_servers(raws)
    for item in damaged:
        if not item.relpath.startswith("raw/"):
            _from_stored_message(item)
    damage.clear(item.relpath for item in damaged if item.repaired)


def _from_stored_message(item: Damaged) -> None:
    """An attachment's bytes, cut again from a whole stored message that holds it."""
    rows = Attachment.objects.filter(sha256=item.sha256, stored_path=item.relpath).select_related("message")
    for attachment in rows:
        message = attachment.message
        if not message.raw_path:
            continue
        try:
            with damage.open_checked(message.raw_path, message.sha256) as fh:
                parsed = mime.parse_file(fh)
        except OSError:
            continue
        for part in parsed.attachments:
            if hashlib.sha256(part.data).hexdigest() == item.sha256:
                store.replace_file(item.relpath, io.BytesIO(part.data))
                item.repaired = "message"
                return
    item.why = item.why or "its message's stored original is damaged too, or does not hold it"


def _from_servers(raws: list[Damaged]) -> None:
    """Messages' own files from their POP3 servers, account by account."""
    wanted: dict[int, dict[str, Damaged]] = {}
    for item in raws:
        copies = Message.objects.filter(sha256=item.sha256, raw_path=item.relpath)
        failures = FetchFailure.objects.filter(raw_path=item.relpath)
        candidates = [
            *copies.filter(server_state=ServerState.ON_SERVER).values_list("account_id", "uidl"),
            *failures.values_list("account_id", "uidl"),
        ]
        if not candidates:
            item.why = "no copy is on a POP3 server (deleted there, or sent or imported here)"
        for account_id, uidl in candidates:
            wanted.setdefault(account_id, {}).setdefault(uidl, item)
    accounts = MailAccount.objects.filter(id__in=wanted)
    for account in accounts.order_by("id"):
        _from_server(account, wanted[account.id])


def _from_server(account: MailAccount, wanted: dict[str, Damaged]) -> None:
    todo = {uidl: item for uidl, item in wanted.items() if not item.repaired}
    if not todo:
        return
    token = sync.claim_lease(account.id)
    if token is None:
        _explain(todo, "a sync of its account was running: run the repair again later")
        return
    try:
        client, listing = sync.open_listing(account, token)
        with contextlib.closing(client):  # closed without QUIT on an error: the server changes nothing
            for count, (uidl, item) in enumerate(todo.items(), start=1):
                if item.repaired:  # another copy of the same content was fetched already
                    continue
                number = listing.get(uidl)
                if number is None:
                    item.why = item.why or "the server no longer has the message"
                    continue
                _fetch_one(client, number, item)
                if count % RENEW_EVERY == 0:
                    sync.renew_lease(account.id, token)
            client.quit()
    except (Pop3Error, sync.LeaseLost) as exc:
        log.warning("repair from the server failed account=%s: %s", account.id, exc)
        _explain(todo, f"the server could not be read: {exc}")
    except Exception as exc:  # credentials that cannot be decrypted, an OAuth grant revoked: the others go on
        log.exception("repair from the server failed account=%s", account.id)
        _explain(todo, f"the server could not be read: {type(exc).__name__}")
    finally:
        sync.release_lease(account.id, token)


def _fetch_one(client, number: int, item: Damaged) -> None:
    tmp = store.temp_file()
    path = Path(tmp.name)
    try:
        with tmp:
            try:
                result = client.retr_to(number, tmp)
            except Pop3ServerError as exc:
                item.why = f"the server refused to send it: {exc}"
                return
            tmp.flush()
            os.fsync(tmp.fileno())
        if result.sha256 != item.sha256:
            item.why = "the server's copy is not the one that was stored"
            return
        with open(path, "rb") as fh:
            store.replace_file(item.relpath, fh)
        item.repaired, item.why = "server", ""
    finally:
        path.unlink(missing_ok=True)


def _explain(todo: dict[str, Damaged], why: str) -> None:
    for item in todo.values():
        if not item.repaired and not item.why:
            item.why = why
