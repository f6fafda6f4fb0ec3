"""The sync engine: fetch new mail from one POP3 account, store it, apply the policy.

Order per message (DESIGN.md, invariant 1): RETR into a temp file -> fsync ->
verify size and SHA-256 -> parse -> raw file into the store -> rows committed.
Only after that may the message be DELE'd, and DELEs take effect only when
the server confirms QUIT; until then nothing is recorded as gone.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.crypto import DecryptionError
from accounts.models import MailAccount

from . import mime, store
from .models import Message, ServerState
from .pop3 import Capabilities, Pop3Client, Pop3Error

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=6)


@dataclass
class SyncResult:
    account: int
    fetched: int = 0
    deleted_on_server: int = 0
    skipped: int = 0
    error: str | None = None
    seconds: float = 0.0
    error_class: str = field(default="", repr=False)

    def as_json(self) -> dict:
        data = asdict(self)
        data.pop("error_class")
        data["seconds"] = round(self.seconds, 3)
        return data


class AccountBusy(Exception):
    """Another sync of this account holds the lease."""


# --- Connecting ---------------------------------------------------------------


def client_for(host: str, port: int, security: str, *, fingerprint: str = "") -> Pop3Client:
    return Pop3Client(
        host,
        port,
        security,
        timeout=settings.WEBPOP_POP3_TIMEOUT,
        session_timeout=settings.WEBPOP_SYNC_LEASE_SECONDS * 0.9,  # end before the lease can lapse
        ca_file=settings.WEBPOP_POP3_CA_FILE,
        fingerprint_sha256=fingerprint or None,
        allow_private=settings.WEBPOP_POP3_ALLOW_PRIVATE,
    )


@dataclass
class ConnectionReport:
    ok: bool
    message: str
    error_class: str = ""
    message_count: int | None = None
    capabilities: Capabilities | None = None


def test_connection(
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    *,
    mechanism: str = "",
    fingerprint: str = "",
) -> ConnectionReport:
    """Connect, log in and STAT, then QUIT. Never changes anything on the server."""
    try:
        with client_for(host, port, security, fingerprint=fingerprint) as client:
            client.login(username, password, allow_plaintext=security == "none", mechanism=mechanism or None)
            count, _size = client.stat()
            capabilities = client.capabilities
            client.quit()
    except Pop3Error as exc:
        return ConnectionReport(ok=False, message=str(exc), error_class=exc.error_class)
    noun = "message" if count == 1 else "messages"
    return ConnectionReport(
        ok=True,
        message=f"Connected and logged in: {count} {noun} on the server.",
        message_count=count,
        capabilities=capabilities,
    )


# --- Lease (invariant 4) ------------------------------------------------------


def claim_lease(account_id: int, now: dt.datetime | None = None) -> str | None:
    """Take the account's sync lease with one conditional UPDATE; None if held."""
    now = now or timezone.now()
    token = secrets.token_hex(16)
    claimed = (
        MailAccount.objects.filter(id=account_id)
        .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
        .update(
            sync_lease_until=now + dt.timedelta(seconds=settings.WEBPOP_SYNC_LEASE_SECONDS),
            sync_lease_token=token,
        )
    )
    return token if claimed == 1 else None


def release_lease(account_id: int, token: str) -> None:
    MailAccount.objects.filter(id=account_id, sync_lease_token=token).update(sync_lease_until=None, sync_lease_token="")


def claim_due_accounts(now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Claim accounts whose next poll is due by pushing next_poll_at forward.

    Each claim is a conditional UPDATE on next_poll_at, so two beats (or a beat
    racing "check now") cannot both enqueue the same account for the same slot.
    """
    now = now or timezone.now()
    due = list(
        MailAccount.objects.filter(enabled=True, next_poll_at__lte=now)
        .order_by("next_poll_at")
        .values_list("id", "next_poll_at", "poll_interval")[:limit]
    )
    claimed = []
    for account_id, next_poll_at, interval in due:
        updated = MailAccount.objects.filter(id=account_id, next_poll_at=next_poll_at).update(
            next_poll_at=now + dt.timedelta(seconds=interval)
        )
        if updated == 1:
            claimed.append(account_id)
    return claimed


# --- Sync -----------------------------------------------------------------------


def sync_account(account_id: int) -> SyncResult:
    """Run one sync of ``account_id`` now, if no other sync of it is running."""
    started = time.monotonic()
    result = SyncResult(account=account_id)
    token = claim_lease(account_id)
    if token is None:
        result.error = "busy: another sync of this account is running"
        result.error_class = "busy"
        return result
    try:
        account = MailAccount.objects.select_related("owner").get(id=account_id)
        MailAccount.objects.filter(id=account_id).update(last_attempt_at=timezone.now())
        try:
            _run(account, result)
        except Pop3Error as exc:
            result.error_class = exc.error_class
            result.error = f"{exc.error_class}: {exc}"
        except DecryptionError as exc:
            result.error_class = "credentials"
            result.error = f"credentials: {exc}"
        except Exception as exc:  # keep the worker alive; record what happened
            log.exception("sync failed account=%s", account_id)
            result.error_class = "internal"
            result.error = f"internal: {type(exc).__name__}"
        result.seconds = time.monotonic() - started
        _record_outcome(account, result)
    finally:
        release_lease(account_id, token)
    log.info(
        "sync account=%s fetched=%s deleted_on_server=%s skipped=%s error_class=%s seconds=%.3f",
        account_id,
        result.fetched,
        result.deleted_on_server,
        result.skipped,
        result.error_class or "-",
        result.seconds,
    )
    return result


def _record_outcome(account: MailAccount, result: SyncResult) -> None:
    now = timezone.now()
    if result.error is None:
        MailAccount.objects.filter(id=account.id).update(
            last_success_at=now,
            last_error_class="",
            last_error="",
            consecutive_failures=0,
            next_poll_at=now + dt.timedelta(seconds=account.poll_interval),
        )
        return
    failures = account.consecutive_failures + 1
    MailAccount.objects.filter(id=account.id).update(
        last_error_class=result.error_class[:20],
        last_error=result.error.split(": ", 1)[-1][:2000],
        consecutive_failures=F("consecutive_failures") + 1,
        next_poll_at=now + _backoff(account.poll_interval, failures),
    )


def _backoff(interval: int, failures: int) -> dt.timedelta:
    """Exponential backoff with jitter, capped; never slower than the cap."""
    base = min(MAX_BACKOFF.total_seconds(), interval * (2 ** min(failures - 1, 10)))
    return dt.timedelta(seconds=base * random.uniform(0.8, 1.2))


def _run(account: MailAccount, result: SyncResult) -> None:
    password = account.get_password()
    policy = account.parsed_policy
    with client_for(account.host, account.port, account.security, fingerprint=account.tls_fingerprint) as client:
        client.login(
            account.username,
            password,
            allow_plaintext=account.security == "none",
            mechanism=account.auth_mechanism or None,
        )
        listing: dict[str, int] = {}
        for number, uidl in client.uidl():
            listing.setdefault(uidl, number)  # a duplicated UIDL: first one wins

        known = set(Message.objects.filter(account=account).values_list("uidl", flat=True))
        new = [(uidl, number) for uidl, number in listing.items() if uidl not in known]
        MailAccount.objects.filter(id=account.id).update(progress_done=0, progress_total=len(new))
        for done, (uidl, number) in enumerate(new, start=1):
            if _fetch_one(client, account, uidl, number):
                result.fetched += 1
            else:
                result.skipped += 1
            if done % 20 == 0 or done == len(new):
                MailAccount.objects.filter(id=account.id).update(progress_done=done)

        to_delete = _messages_to_delete(account, policy, listing)
        for _pk, uidl in to_delete:
            client.dele(listing[uidl])
        client.quit()  # raises unless the server confirms: then nothing is gone

    if to_delete:
        result.deleted_on_server = Message.objects.filter(id__in=[m for m, _ in to_delete]).update(
            server_state=ServerState.GONE
        )
    # Marked for deletion but no longer listed: already gone from the server.
    Message.objects.filter(account=account, server_state=ServerState.DELETE_PENDING).exclude(
        uidl__in=list(listing)
    ).update(server_state=ServerState.GONE)


def _messages_to_delete(account: MailAccount, policy, listing: dict[str, int]) -> list[tuple[int, str]]:
    """Committed messages the policy says to DELE now, that the server still lists."""
    conditions = Q(server_state=ServerState.DELETE_PENDING) if policy.mirror else Q(pk__in=[])
    if policy.delete_after_fetch:
        conditions |= Q(server_state=ServerState.ON_SERVER)
    if policy.delete_after_days is not None:
        cutoff = timezone.now() - dt.timedelta(days=policy.delete_after_days)
        conditions |= Q(server_state=ServerState.ON_SERVER, received_at__lte=cutoff)
    rows = Message.objects.filter(conditions, account=account).exclude(server_state=ServerState.GONE)
    return [(pk, uidl) for pk, uidl in rows.values_list("id", "uidl") if uidl in listing]


def _fetch_one(client: Pop3Client, account: MailAccount, uidl: str, number: int) -> bool:
    """Fetch, verify, parse and store one message. False if it was skipped.

    Errors of this one message (server -ERR on RETR, a parse or storage
    failure) skip it and the sync goes on; connection-level errors end the
    session because nothing more can be read from it.
    """
    tmp = store.temp_file()
    tmp_path = Path(tmp.name)
    try:
        try:
            retr = client.retr_to(number, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        finally:
            tmp.close()
        if retr.size > settings.WEBPOP_MAX_MESSAGE_BYTES:
            log.warning("skipping oversize message account=%s uidl=%s size=%s", account.id, uidl, retr.size)
            return False
        raw = store.commit_raw(tmp_path, expected_size=retr.size, expected_sha256=retr.sha256)
        with open(store.path_of(raw.relpath), "rb") as fh:
            parsed = mime.parse_file(fh)
        return store.save_message(account, uidl, raw, parsed) is not None
    except Pop3Error as exc:
        if exc.error_class in {"permanent", "temporary"}:  # -ERR for this message only
            log.warning("RETR failed account=%s uidl=%s error=%s", account.id, uidl, exc)
            return False
        raise
    except store.VerificationError:
        log.error("verification failed account=%s uidl=%s", account.id, uidl)
        return False
    except Exception:  # invariant 3: one bad message never blocks the rest
        log.exception("storing failed account=%s uidl=%s", account.id, uidl)
        return False
    finally:
        tmp_path.unlink(missing_ok=True)


# --- User actions ---------------------------------------------------------------


@transaction.atomic
def delete_messages(owner_id: int, message_ids: list[int]) -> int:
    """Move messages to Trash; under the mirror policy mark them for DELE on the server."""
    now = timezone.now()
    messages = Message.objects.filter(owner_id=owner_id, id__in=message_ids).select_related("account")
    mirror_ids = [m.id for m in messages if m.account.parsed_policy.mirror]
    moved = messages.update(folder="trash", deleted_at=now)
    Message.objects.filter(id__in=mirror_ids, server_state=ServerState.ON_SERVER).update(
        server_state=ServerState.DELETE_PENDING
    )
    return moved
