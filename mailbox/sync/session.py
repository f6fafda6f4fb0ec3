"""One POP3 session of one account: log in, list, fetch and store what is new, DELE per the policy, QUIT.

Order per message (docs/design.md, invariant 1): RETR into a temp file -> fsync ->
verify size and SHA-256 -> parse -> raw file into the store -> rows committed.
Only after that may the message be DELE'd, and DELEs take effect only when
the server confirms QUIT; until then nothing is recorded as gone.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import MailAccount
from oauth import tokens as oauth_tokens
from webpop.lib import shutdown

from .. import durability, mime, quota, rules, server_memory, snoozing, store, threads
from ..models import FetchFailure, Message, UidlAlias
from ..pop3 import Pop3AuthError, Pop3Client, Pop3Error, Pop3ServerError
from . import crash, deletion, diff, lease
from .connection import oauth_client, password_login, refused_method_fix
from .ingest import PreparedBatch, Retrieved
from .outcome import OAUTH_REFUSED, SyncResult

log = logging.getLogger(__name__)


class QuotaFull(Exception):
    """The owner's storage quota is used up: stop fetching (never delete because of it)."""


class Session:
    """One POP3 session of one account: list, fetch what is new, apply the policy, QUIT."""

    RENEW_SECONDS = 20.0  # between lease renewals: far inside any lease, and one UPDATE, not one per message
    BATCH_MESSAGES = 100  # messages per commit
    BATCH_BYTES = 32 * 1024 * 1024

    def __init__(self, account: MailAccount, result: SyncResult, lease_token: str):
        self.account = account
        self.result = result
        self.lease_token = lease_token
        self.policy = account.parsed_policy
        self.notes: list[str] = []

    def run(self) -> None:
        account = self.account
        with (
            contextlib.closing(self.log_in()) as client,  # closed without QUIT on error: DELEs roll back
            shutdown.cut_off_after_grace(client.abort),  # a worker stopping waits this long at most
        ):
            if shutdown.requested():  # the worker began to stop during the login
                raise shutdown.Stopping("stopped after the login")
            self._note_capabilities(client)
            listing = diff.server_listing(client, self.notes)
            prefix = diff.settled_prefix(account, listing)
            digest = diff.unchanged_since_settled(account, listing, prefix)
            if digest and not diff.deletions_due(account, self.policy):
                client.leave()  # nothing arrived since a sync that left nothing to do: nothing to commit
                self.result.listing_digest, self.result.deletion_due_at = digest, account.deletion_due_at
                self.result.listing_length = account.listing_length
                self.result.notes = account.sync_notes
                return
            new = diff.new_messages(account, listing, prefix)
            # The digest goes before anything is stored: a sync cut short leaves the next one to compare
            # the whole listing (diff.reconcile_missing relies on it).
            MailAccount.objects.filter(id=account.id).update(
                progress_total=len(listing), progress_done=len(listing) - len(new), progress_bytes=0, listing_digest=""
            )
            if new:
                self._fetch(client, new, len(listing) - len(new))
            crash.point("before_dele")
            to_delete = deletion.messages_to_delete(account, self.policy, listing)
            all_deleted = True
            if to_delete:
                results = client.dele_many([listing[uidl] for _kind, _pk, uidl in to_delete])
                to_delete = [item for item, error in zip(to_delete, results, strict=True) if error is None]
                all_deleted = len(to_delete) == len(results)
            crash.point("before_quit")
            client.quit()  # raises unless the server confirms: then nothing is gone

        crash.point("after_quit")
        self.result.deleted_on_server = deletion.mark_gone(to_delete)
        diff.reconcile_missing(account, listing, prefix)
        self.result.notes = " ".join(self.notes)
        if all_deleted and not self.result.more_pending:
            deleted = {uidl for _kind, _pk, uidl in to_delete}
            self.result.listing_digest, self.result.listing_length, self.result.deletion_due_at = diff.settled(
                account, self.policy, listing, deleted, fetched_any=bool(new), prefix=prefix
            )

    def log_in(self) -> Pop3Client:
        account = self.account
        oauth = oauth_tokens.oauth_login(account)  # None unless the account signs in with OAuth2
        if oauth:
            token = oauth_tokens.access_token_for(account)
            try:
                return oauth_client(
                    account.host,
                    account.port,
                    account.security,
                    account.username,
                    token,
                    oauth.mechanism,
                    oauth.two_step,
                    account.tls_fingerprint,
                )
            except Pop3AuthError:
                oauth_tokens.discard_access_token(account)  # next time: refresh, and learn if it was revoked
                self.result.fix = OAUTH_REFUSED
                raise
        scram_cache = server_memory.scram_cache(account)
        login = password_login(
            account.host,
            account.port,
            account.security,
            account.username,
            account.get_password(),
            chosen=account.auth_mechanism,
            remembered=account.working_auth_mechanism,
            fingerprint=account.tls_fingerprint,
            profile=server_memory.server_profile(account),
            scram_cache=scram_cache,
            then=("UIDL",),  # what every sync asks first, in the login's round trip
        )
        self.result.scram_cache = scram_cache
        try:
            client = login.open()
            self.result.server_profile = client.profile
            return client
        except Pop3AuthError as exc:
            self.result.fix = refused_method_fix(exc, chosen=bool(account.auth_mechanism))
            raise
        finally:
            if login.remember != account.working_auth_mechanism:
                MailAccount.objects.filter(id=account.id).update(working_auth_mechanism=login.remember)

    # Capabilities ------------------------------------------------------------

    def _note_capabilities(self, client: Pop3Client) -> None:
        caps = client.capabilities
        if caps.login_delay:
            self.result.retry_after = caps.login_delay
            self.notes.append(f"The server allows a login every {caps.login_delay} s.")
        if caps.expire == 0:
            self.notes.append("The server deletes messages once they are downloaded (EXPIRE 0).")
        elif caps.expire:
            self.notes.append(f"The server deletes downloaded messages after {caps.expire} days (EXPIRE).")

    # Fetching --------------------------------------------------------------------

    def _fetch(self, client: Pop3Client, new: list[tuple[str, int]], already: int) -> None:
        account, result = self.account, self.result
        sizes = client.list()
        limit = account.effective_max_message_bytes
        quota_left = _quota_left(account)
        batch: list[tuple[str, int]] = []
        batch_bytes = 0
        for uidl, number in new:
            size = sizes.get(number, 0)
            if size > limit:
                _record_too_large(client, account, uidl, number, size)
                result.skipped += 1
                continue
            if batch and (
                len(batch) >= settings.WEBPOP_SYNC_MAX_MESSAGES or batch_bytes + size > settings.WEBPOP_SYNC_MAX_BYTES
            ):
                result.more_pending = True
                self.notes.append("A large mailbox: it is being fetched in several sessions.")
                break
            batch.append((uidl, number))
            batch_bytes += size

        by_number = {number: uidl for uidl, number in batch}
        temp_files: dict[int, BinaryIO] = {}
        self._failing = set(FetchFailure.objects.filter(account=account).values_list("uidl", flat=True))

        def open_out(number: int) -> BinaryIO:
            temp_files[number] = store.temp_file()
            return temp_files[number]

        pending: list[Retrieved] = []
        pending_bytes = 0
        accepted_bytes = 0
        self._done = already
        self._session_keys: set[tuple[str, str]] = set()
        self._stored_keys: dict[tuple[str, str], int] = {}
        renewed_at = time.monotonic()
        try:
            try:
                # Raw files go into the store as they arrive; each batch is made durable before its rows are committed.
                with durability.durability_elsewhere():
                    for count, (number, outcome) in enumerate(client.retr_many(list(by_number), open_out), start=1):
                        uidl = by_number[number]
                        if isinstance(outcome, Pop3ServerError):
                            error = f"The server refused to send it: {outcome}"
                            _record_failure(account, uidl, sizes.get(number), error)
                            result.skipped += 1
                            continue
                        tmp = temp_files.pop(number)
                        crash.point("after_retr")
                        if quota_left is not None and accepted_bytes + outcome.size > quota_left:
                            _discard(tmp)
                            waiting = len(by_number) - count + 1
                            raise QuotaFull(
                                f"Your storage is full; {waiting} or more messages are waiting on the server."
                            )
                        try:
                            tmp.close()  # flushes the last bytes: may find the disk full
                        except OSError:
                            with contextlib.suppress(OSError):
                                _discard(tmp)
                            raise
                        raw = self._store_raw(uidl, Path(tmp.name), outcome.size, outcome.sha256)
                        if raw is None:
                            continue
                        pending.append(Retrieved(uidl, raw.relpath, raw.size, raw.sha256))
                        pending_bytes += outcome.size
                        accepted_bytes += outcome.size
                        if len(pending) >= self.BATCH_MESSAGES or pending_bytes >= self.BATCH_BYTES:
                            batch, pending, pending_bytes = pending, [], 0
                            self._ingest(batch)
                        if time.monotonic() - renewed_at >= self.RENEW_SECONDS:
                            lease.renew_lease(account.id, self.lease_token)
                            renewed_at = time.monotonic()
                        if shutdown.requested():  # the worker is stopping: keep what is whole, fetch no more
                            raise shutdown.Stopping(f"stopped after {count} of {len(by_number)} messages")
            except Exception as exc:
                if not isinstance(exc, (Pop3Error, QuotaFull, shutdown.Stopping)) and not store.is_disk_full(exc):
                    raise
                # The session broke, or storage is full: keep what arrived whole before that
                # (with the disk full that may fail again; then the next sync fetches those again).
                batch, pending = pending, []
                self._ingest(batch)
                raise
            batch, pending = pending, []
            self._ingest(batch)  # every row committed before anything may be DELE'd
        finally:
            # Files of a batch never committed stay unreferenced: gcstorage frees them.
            for tmp in temp_files.values():  # only left behind when the session broke mid-message
                with contextlib.suppress(OSError):  # a full disk: the error on the way out says so
                    _discard(tmp)

    def _store_raw(self, uidl: str, path: Path, size: int, sha256: str) -> store.StoredFile | None:
        """Verify a retrieved temp file against what the session saw and move it into the store.

        None when it failed (recorded for quarantine; the rest go on, invariant 3).
        """
        account = self.account
        try:
            raw = store.commit_raw(path, expected_size=size, expected_sha256=sha256)
        except store.VerificationError as exc:
            _record_failure(account, uidl, size, f"Stored bytes did not verify: {exc}")
        except Exception as exc:
            if store.is_disk_full(exc):
                raise  # not this message's fault: the sync stops (and it is never quarantined for it)
            log.exception("storing failed account=%s uidl=%s", account.id, uidl)
            _record_failure(account, uidl, size, f"{type(exc).__name__}: {exc}")
        else:
            crash.point("after_store")
            return raw
        finally:
            path.unlink(missing_ok=True)
        self.result.skipped += 1
        return None

    def _ingest(self, batch: list[Retrieved]) -> None:
        if batch:
            self.commit_batch(self.prepare_batch(batch))

    def prepare_batch(self, batch: list[Retrieved]) -> PreparedBatch:
        """Parse a batch of stored raw files and store their attachments.

        The raw files went into the store as they arrived (``_store_raw``); they
        and the attachments are made durable together, with one syncfs, by
        ``commit_batch`` before any row points at them: a crash in between leaves at worst
        unreferenced files, and nothing can be DELE'd before its row is
        committed. A message that fails is recorded and the others go on
        (invariant 3).
        """
        account, result = self.account, self.result
        ready: list[tuple[str, store.StoredFile, mime.ParsedMessage]] = []
        with durability.deferred_durability() as written:
            store.require_durable(item.relpath for item in batch)
            for item in batch:
                raw = store.StoredFile(sha256=item.sha256, size=item.size, relpath=item.relpath)
                try:
                    with store.open_file(raw.relpath) as fh:
                        parsed = mime.parse_file(fh)
                    ready.append((item.uidl, raw, parsed))
                except Exception as exc:  # invariant 3: one bad message never blocks the rest
                    log.exception("parsing failed account=%s uidl=%s", account.id, item.uidl)
                    _record_failure(account, item.uidl, item.size, f"{type(exc).__name__}: {exc}", raw.relpath)
                    result.skipped += 1
            fresh, aliases, later_copies = self._split_duplicates(ready)
            attachments = [store.write_attachments(parsed) for _uidl, _raw, parsed in fresh]
        return PreparedBatch(fresh, attachments, aliases, later_copies, len(batch), written)

    def commit_batch(self, job: PreparedBatch) -> None:
        """Rows for a prepared batch, in one transaction, once its files are durable."""
        account = self.account
        durability.make_durable(job.files)
        crash.point("after_sync")
        try:
            stored = store.save_messages(account, job.fresh, job.attachments)
        except Exception:
            # A concurrent sync or one bad row: store them one by one, isolating failures.
            log.warning("batch insert failed, storing one by one account=%s", account.id, exc_info=True)
            stored = []
            for uidl, raw, parsed in job.fresh:
                try:
                    message = store.save_message(account, uidl, raw, parsed)
                except Exception as exc:
                    log.exception("storing failed account=%s uidl=%s", account.id, uidl)
                    _record_failure(account, uidl, raw.size, f"{type(exc).__name__}: {exc}", raw.relpath)
                    self.result.skipped += 1
                    continue
                if message is None:
                    self.result.skipped += 1
                else:
                    stored.append(message)
        crash.point("after_commit")
        try:
            threads.assign(stored)
        except Exception:  # conversations are a convenience: never lose the batch over them
            log.exception("threading failed account=%s", account.id)
        try:
            rules.apply(stored)
        except Exception:  # a broken rule must not lose the batch: the mail stays where it was delivered
            log.exception("rules failed account=%s", account.id)
        try:
            snoozing.wake_for_new_mail(stored)  # a reply brings its snoozed conversation back
        except Exception:  # a convenience: never lose the batch over it
            log.exception("waking snoozed conversations failed account=%s", account.id)
        for message in stored:
            self._stored_keys[(message.sha256, message.message_id)] = message.pk
        aliases = list(job.aliases)
        for key, uidls in job.later_copies.items():
            first = self._stored_keys.get(key)
            if first is not None:  # else the first copy failed: the next sync fetches these again
                aliases += [(uidl, first) for uidl in uidls]
        for uidl, message_pk in aliases:
            _save_alias(account, uidl, message_pk)
        result = self.result
        result.skipped += len(aliases)
        result.fetched += len(stored)
        result.bytes += sum(message.size for message in stored)
        self._done += job.count
        done_uidls = {message.uidl for message in stored} & self._failing
        if done_uidls:
            FetchFailure.objects.filter(account=account, uidl__in=done_uidls).delete()
        MailAccount.objects.filter(id=account.id).update(progress_done=self._done, progress_bytes=result.bytes)

    def _split_duplicates(self, ready):
        """Separate messages already stored under another UIDL (same bytes and Message-ID) in this account."""
        keyed = {(raw.sha256, parsed.message_id) for _uidl, raw, parsed in ready if parsed.message_id}
        existing = {}
        if keyed:
            rows = Message.objects.filter(account=self.account, sha256__in={sha for sha, _ in keyed})
            for pk, sha, message_id in rows.values_list("id", "sha256", "message_id"):
                existing.setdefault((sha, message_id), pk)
        fresh, aliases, later_copies = [], [], {}
        for uidl, raw, parsed in ready:
            key = (raw.sha256, parsed.message_id)
            if parsed.message_id and key in existing:
                aliases.append((uidl, existing[key]))
            elif parsed.message_id and (key in later_copies or key in self._session_keys):
                # A copy of one stored earlier in this session, maybe not committed yet.
                later_copies.setdefault(key, []).append(uidl)
            else:
                fresh.append((uidl, raw, parsed))
                if parsed.message_id:
                    later_copies[key] = []
        self._session_keys.update(later_copies)
        return fresh, aliases, {key: uidls for key, uidls in later_copies.items() if uidls}


def _discard(tmp: BinaryIO) -> None:
    try:
        tmp.close()  # flushing what is buffered may fail again on a full disk; the file goes all the same
    finally:
        Path(tmp.name).unlink(missing_ok=True)


def _quota_left(account: MailAccount) -> int | None:
    left = quota.left(account.owner_id)
    if left is not None and left <= 0:
        raise QuotaFull("Your storage is full: new mail stays on the server until you make room.")
    return left


def _save_alias(account: MailAccount, uidl: str, message_id: int) -> None:
    try:
        with transaction.atomic():
            UidlAlias.objects.create(account=account, uidl=uidl, message_id=message_id)
    except IntegrityError:
        pass  # a concurrent sync recorded it first


@transaction.atomic
def _record_failure(account: MailAccount, uidl: str, size: int | None, error: str, raw_path: str = "") -> None:
    failure, _created = FetchFailure.objects.select_for_update().get_or_create(account=account, uidl=uidl)
    now = timezone.now()
    failure.attempts += 1
    failure.size = size
    failure.error = error[:2000]
    failure.last_failed_at = now
    failure.raw_path = raw_path or failure.raw_path
    if failure.attempts >= settings.WEBPOP_QUARANTINE_AFTER and failure.quarantined_at is None:
        failure.quarantined_at = now
        log.warning("quarantined account=%s uidl=%s attempts=%s", account.id, uidl, failure.attempts)
    failure.save()


def _record_too_large(client: Pop3Client, account: MailAccount, uidl: str, number: int, size: int) -> None:
    """Skip a message over the size limit, keeping its headers so the user knows what it is."""
    subject = sender = ""
    if client.capabilities.top:
        try:
            headers = mime.parse_bytes(client.top(number, 0))
            subject, sender = headers.subject, headers.from_email or headers.from_name
        except Pop3ServerError:
            pass
    FetchFailure.objects.update_or_create(
        account=account,
        uidl=uidl,
        defaults={
            "size": size,
            "reason": FetchFailure.Reason.TOO_LARGE,
            "error": f"{size:,} bytes is over this account's limit of {account.effective_max_message_bytes:,} bytes.",
            "subject": subject[:1000],
            "sender": sender[:320],
            "last_failed_at": timezone.now(),
        },
    )
