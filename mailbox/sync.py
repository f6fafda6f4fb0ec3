"""The sync engine: fetch new mail from one POP3 account, store it, apply the policy.

Order per message (docs/design.md, invariant 1): RETR into a temp file -> fsync ->
verify size and SHA-256 -> parse -> raw file into the store -> rows committed.
Only after that may the message be DELE'd, and DELEs take effect only when
the server confirms QUIT; until then nothing is recorded as gone.

A large download is parsed and stored in a forked child process while this
one keeps reading from the server (:class:`_ForkedIngest`): parsing and
storing cost more CPU than the network, and a second core then does them.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import hashlib
import logging
import multiprocessing
import os
import queue
import random
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import BinaryIO, NoReturn

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db import connections as db_connections
from django.db.models import Case, F, Q, Sum, Value, When
from django.utils import timezone

from accounts.crypto import DecryptionError
from accounts.models import MailAccount, Profile
from oauth import tokens as oauth_tokens
from push import actions as push_actions
from webpop.lib import leases

from . import actions, mime, rules, server_memory, storage_gc, storage_refs, store, threads
from .models import FetchFailure, Message, ServerState, SyncRun, UidlAlias
from .pop3 import (
    PASSWORD_MECHANISMS,
    Capabilities,
    Pop3AuthError,
    Pop3Client,
    Pop3Error,
    Pop3ServerError,
    Pop3TemporaryError,
    ScramCache,
    ServerProfile,
)
from .pop3_login import PasswordLogin

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
    # Not part of the JSON contract of `syncmail`:
    error_class: str = field(default="", repr=False)
    server_profile: ServerProfile | None = field(default=None, repr=False)  # learned by this session's login
    scram_cache: ScramCache | None = field(default=None, repr=False)
    bytes: int = field(default=0, repr=False)
    more_pending: bool = field(default=False, repr=False)
    retry_after: int = field(default=0, repr=False)
    notes: str = field(default="", repr=False)
    ingest_peak_rss_kb: int = field(default=0, repr=False)  # of the ingest child, when there was one
    fix: str = field(default="", repr=False)  # what the user can do, when it differs from the error class's

    def as_json(self) -> dict:
        data = {key: value for key, value in asdict(self).items() if key in _JSON_FIELDS}
        data["seconds"] = round(self.seconds, 3)
        return data


_JSON_FIELDS = ("account", "fetched", "deleted_on_server", "skipped", "error", "seconds")


# --- Connecting ---------------------------------------------------------------


def client_for(
    host: str, port: int, security: str, *, fingerprint: str = "", profile: ServerProfile | None = None
) -> Pop3Client:
    return Pop3Client(
        host,
        port,
        security,
        timeout=settings.WEBPOP_POP3_TIMEOUT,
        session_timeout=settings.WEBPOP_SYNC_LEASE_SECONDS * 0.9,  # end before the lease can lapse
        ca_file=settings.WEBPOP_POP3_CA_FILE,
        fingerprint_sha256=fingerprint or None,
        allow_private=settings.WEBPOP_POP3_ALLOW_PRIVATE,
        profile=profile,
    )


def password_login(
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    *,
    chosen: str = "",
    remembered: str = "",
    fingerprint: str = "",
    profile: ServerProfile | None = None,
    scram_cache: ScramCache | None = None,
    then: tuple[str, ...] = (),
) -> PasswordLogin:
    """The one way webpop logs in with a password: ranked methods, one fallback, at most two tries.

    ``profile``: what the last session learned (no CAPA then); ``then``: commands pipelined behind the login.
    """
    return PasswordLogin(
        lambda profile: client_for(host, port, security, fingerprint=fingerprint, profile=profile),
        username,
        password,
        allow_plaintext=security == "none",
        chosen=chosen,
        remembered=remembered,
        profile=profile,
        scram_cache=scram_cache,
        then=then,
    )


def oauth_client(
    host: str,
    port: int,
    security: str,
    username: str,
    access_token: str,
    mechanism: str,
    two_step: bool,
    fingerprint: str = "",
) -> Pop3Client:
    """A connected client logged in with an OAuth2 access token (XOAUTH2 or OAUTHBEARER)."""
    client = client_for(host, port, security, fingerprint=fingerprint)
    client.connect()
    try:
        client.login_oauth(
            username, access_token, mechanism=mechanism, two_step=two_step, allow_plaintext=security == "none"
        )
    except BaseException:
        client.close()
        raise
    return client


def refused_method_fix(exc: Pop3AuthError, *, chosen: bool) -> str:
    """What to do when the server refused a method that needs its own secret; "" for a wrong password."""
    if exc.response is None or exc.mechanism is None or exc.mechanism in PASSWORD_MECHANISMS:
        return ""
    if chosen:
        return "If the password is right, set the login method to Automatic in the account settings."
    return "If the password is right, ask the provider to allow this login method for the account."


@dataclass
class ConnectionReport:
    ok: bool
    message: str
    error_class: str = ""
    message_count: int | None = None
    capabilities: Capabilities | None = None
    mechanism: str = ""  # the login method that worked, when it was chosen automatically


def test_connection(
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    *,
    mechanism: str = "",
    remembered: str = "",
    fingerprint: str = "",
    access_token: str = "",
    two_step: bool = False,
) -> ConnectionReport:
    """Connect, log in and STAT, then QUIT. Never changes anything on the server.

    With ``access_token`` the login is OAuth2 (``mechanism`` XOAUTH2 or OAUTHBEARER) and ``password`` unused.
    Otherwise ``mechanism`` is the user's choice of login method ("": automatic) and ``remembered``
    the method that worked for the account before.
    """
    login = None
    try:
        if access_token:
            client = oauth_client(host, port, security, username, access_token, mechanism, two_step, fingerprint)
        else:
            login = password_login(
                host,
                port,
                security,
                username,
                password,
                chosen=mechanism,
                remembered=remembered,
                fingerprint=fingerprint,
                then=("STAT", "QUIT"),  # one round trip after the password
            )
            client = login.open()
        with contextlib.closing(client):  # connected already: `with client` would connect again
            count, _size = client.stat()
            capabilities = client.capabilities
            client.quit()
    except Pop3Error as exc:
        message = str(exc)
        if isinstance(exc, Pop3AuthError) and (fix := refused_method_fix(exc, chosen=bool(mechanism))):
            message = f"{message} {fix}"
        return ConnectionReport(ok=False, message=message, error_class=exc.error_class)
    noun = "message" if count == 1 else "messages"
    return ConnectionReport(
        ok=True,
        message=f"Connected and logged in: {count} {noun} on the server.",
        message_count=count,
        capabilities=capabilities,
        mechanism=login.worked if login is not None and not mechanism else "",
    )


def test_oauth_connection(
    account: MailAccount, host: str, port: int, security: str, username: str, *, fingerprint: str = ""
) -> ConnectionReport:
    """``test_connection`` for an account that signs in with its OAuth2 grant."""
    try:
        token = oauth_tokens.access_token_for(account)
    except oauth_tokens.ReconnectRequired as exc:
        return ConnectionReport(ok=False, message=f"{exc} {_RECONNECT}", error_class="auth")
    except oauth_tokens.TokenUnavailable as exc:
        return ConnectionReport(ok=False, message=str(exc), error_class="temporary")
    login = oauth_tokens.oauth_login(account)
    return test_connection(
        host,
        port,
        security,
        username,
        "",
        mechanism=login.mechanism,
        fingerprint=fingerprint,
        access_token=token,
        two_step=login.two_step,
    )


# --- Lease (invariant 4) ------------------------------------------------------

WORKER = f"{socket.gethostname()}:{os.getpid()}"


class LeaseLost(Exception):
    """Another worker took over this account's lease: stop without committing DELEs."""


_worker_id = leases.worker_id
_holder_is_dead = leases.holder_is_dead


def claim_lease(account_id: int, now: dt.datetime | None = None) -> str | None:
    """Take the account's sync lease with a conditional UPDATE; None if it is held.

    A lease lapses after WEBPOP_SYNC_LEASE_SECONDS; a holder that was killed
    on this same host is recognised at once (its pid is gone) so a restarted
    worker need not wait for the lapse.
    """
    now = now or timezone.now()
    token = secrets.token_hex(16)
    new_lease = {
        "sync_lease_until": now + dt.timedelta(seconds=settings.WEBPOP_SYNC_LEASE_SECONDS),
        "sync_lease_token": token,
        "sync_lease_owner": _worker_id(),
    }
    free = Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now)
    if MailAccount.objects.filter(free, id=account_id).update(**new_lease) == 1:
        return token
    held = MailAccount.objects.filter(id=account_id).values_list("sync_lease_token", "sync_lease_owner").first()
    if held and held[0] and _holder_is_dead(held[1]):
        stolen = MailAccount.objects.filter(id=account_id, sync_lease_token=held[0]).update(**new_lease)
        if stolen == 1:
            log.warning("took over the sync lease of dead worker %s account=%s", held[1], account_id)
            return token
    return None


def renew_lease(account_id: int, token: str) -> None:
    renewed = MailAccount.objects.filter(id=account_id, sync_lease_token=token).update(
        sync_lease_until=timezone.now() + dt.timedelta(seconds=settings.WEBPOP_SYNC_LEASE_SECONDS)
    )
    if renewed != 1:
        raise LeaseLost(f"the sync lease of account {account_id} was taken over")


def release_lease(account_id: int, token: str) -> None:
    MailAccount.objects.filter(id=account_id, sync_lease_token=token).update(
        sync_lease_until=None, sync_lease_token="", sync_lease_owner=""
    )


def claim_due_accounts(now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Claim accounts whose next poll is due by pushing next_poll_at forward.

    Each claim is a conditional UPDATE on next_poll_at, so two beats (or a beat
    racing "check now") cannot both enqueue the same account for the same slot.
    The sync itself sets the real next poll time when it finishes.
    """
    now = now or timezone.now()
    due = list(
        MailAccount.objects.filter(enabled=True, next_poll_at__lte=now, owner__is_active=True)  # disabled users: none
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


# --- Crash points for the crash-safety tests ------------------------------------------

# "point:n" kills this process with SIGKILL the n-th time the sync reaches
# that point. Empty (always, outside the crash tests) it costs one comparison.
_CRASH_AT = os.environ.get("WEBPOP_TEST_CRASH_AT", "")
_crash_hits: dict[str, int] = {}


def _crash_point(name: str) -> None:
    if not _CRASH_AT:
        return
    point, _, nth = _CRASH_AT.partition(":")
    if point == name:
        _crash_hits[name] = _crash_hits.get(name, 0) + 1
        if _crash_hits[name] >= int(nth or 1):
            if _ingest_parent_pid:  # the whole worker dies, not just its ingest child
                os.kill(_ingest_parent_pid, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)


_ingest_parent_pid = 0  # set in a _ForkedIngest child


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
    run = None
    try:
        account = MailAccount.objects.get(id=account_id)
        now = timezone.now()
        MailAccount.objects.filter(id=account_id).update(last_attempt_at=now)
        run = SyncRun.objects.create(account=account, started_at=now, worker=_worker_id())
        try:
            _Session(account, result, token).run()
        except Pop3Error as exc:
            result.error_class = exc.error_class
            result.error = f"{exc.error_class}: {exc}"
            if isinstance(exc, Pop3TemporaryError) and exc.code == "LOGIN-DELAY":
                result.retry_after = max(result.retry_after, 900)
        except oauth_tokens.ReconnectRequired as exc:
            result.error_class = "auth"
            result.error = f"auth: {exc}"
            result.fix = _RECONNECT
        except oauth_tokens.TokenUnavailable as exc:
            result.error_class = "temporary"
            result.error = f"temporary: {exc}"
        except DecryptionError as exc:
            result.error_class = "credentials"
            result.error = f"credentials: {exc}"
        except QuotaFull as exc:
            result.error_class = "quota"
            result.error = f"quota: {exc}"
        except LeaseLost as exc:
            result.error_class = "busy"
            result.error = f"busy: {exc}"
        except Exception as exc:  # keep the worker alive; record what happened
            log.exception("sync failed account=%s", account_id)
            result.error_class = "internal"
            result.error = f"internal: {type(exc).__name__}"
        result.seconds = time.monotonic() - started
        _record_outcome(account, result, run)
        if result.fetched:
            push_actions.new_mail_stored(account.owner_id)  # never raises: notifications never stop ingest
    finally:
        release_lease(account_id, token)
    log.info(
        "sync account=%s fetched=%s bytes=%s deleted_on_server=%s skipped=%s error_class=%s seconds=%.3f",
        account_id,
        result.fetched,
        result.bytes,
        result.deleted_on_server,
        result.skipped,
        result.error_class or "-",
        result.seconds,
    )
    return result


class QuotaFull(Exception):
    """The owner's storage quota is used up: stop fetching (never delete because of it)."""


def _record_outcome(account: MailAccount, result: SyncResult, run: SyncRun | None) -> None:
    now = timezone.now()
    if run is not None:
        SyncRun.objects.filter(id=run.id).update(
            finished_at=now,
            fetched=result.fetched,
            bytes=result.bytes,
            deleted_on_server=result.deleted_on_server,
            skipped=result.skipped,
            error_class=result.error_class[:20],
            error=(result.error or "")[:2000],
        )
    if result.error is None:
        if result.more_pending:
            next_poll = now  # the next chunk of a big first sync, right away
        else:
            next_poll = now + dt.timedelta(seconds=max(account.poll_interval, result.retry_after))
        MailAccount.objects.filter(id=account.id).update(
            last_success_at=now,
            last_error_class="",
            last_error="",
            consecutive_failures=0,
            next_poll_at=next_poll,
            sync_notes=result.notes,
            **_learned(account, result),
        )
        return
    if result.error_class == "busy":
        return  # not a failure of the account
    failures = account.consecutive_failures + 1
    delay = max(_backoff(account.poll_interval, failures, result.error_class).total_seconds(), result.retry_after)
    updates = {
        "last_error_class": result.error_class[:20],
        "last_error": _explain(result),
        "consecutive_failures": F("consecutive_failures") + 1,
        "next_poll_at": now + dt.timedelta(seconds=delay),
    }
    if result.notes:
        updates["sync_notes"] = result.notes
    updates.update(_learned(account, result))
    MailAccount.objects.filter(id=account.id).update(**updates)


def _learned(account: MailAccount, result: SyncResult) -> dict[str, Case]:
    """Column updates keeping what the session learned about the server; after a failure, learn again.

    Each applies only while the server settings are the ones this sync used (the owner may have changed
    them meanwhile), within the account's one UPDATE.
    """
    updates: dict[str, object] = {}
    profile = result.server_profile.to_json() if result.server_profile and result.error is None else {}
    if profile != account.server_profile:
        updates["server_profile"] = profile
    cache = result.scram_cache
    if result.error_class == "auth":
        if account.scram_cache_encrypted:
            updates["scram_cache_encrypted"] = ""  # a cached key may be what no longer works
    elif cache is not None and cache.changed:
        updates["scram_cache_encrypted"] = server_memory.encrypt_scram_cache(cache)
    same = account.same_server_condition()
    return {
        name: Case(When(same, then=Value(value, output_field=MailAccount._meta.get_field(name))), default=F(name))
        for name, value in updates.items()
    }


_HOW_TO_FIX = {
    "auth": "Check the user name and password (some providers need an app password). "
    "webpop keeps retrying, less often, until it works.",
    "tls": "The server's certificate is not trusted. If the server is yours and self-signed, "
    "pin its fingerprint in the account settings.",
    "dns": "Check the server name.",
    "refused": "Check the server name, port and security setting.",
    "private_address": "This site does not allow servers on private networks.",
    "quota": "Delete some mail or ask the administrator for more space. Nothing is deleted from the server.",
    "credentials": "Enter the password again in the account settings.",
}


_RECONNECT = "Sign in again with Reconnect on the account page; until then no mail is fetched."
_OAUTH_REFUSED = (
    "The mail server refused the signed-in access. Make sure POP is turned on in the mailbox's settings; "
    "if you removed webpop's access or changed your password, sign in again with Reconnect."
)


def _explain(result: SyncResult) -> str:
    text = (result.error or "").split(": ", 1)[-1]
    fix = result.fix or _HOW_TO_FIX.get(result.error_class)
    return f"{text} {fix}"[:2000] if fix else text[:2000]


def _backoff(interval: int, failures: int, error_class: str = "temporary") -> dt.timedelta:
    """Exponential backoff with jitter, capped. Authentication errors back off from an hour."""
    if error_class in {"auth", "credentials"}:
        base, cap = 3600.0, 24 * 3600.0
    else:
        base, cap = float(interval), MAX_BACKOFF.total_seconds()
    seconds = min(cap, base * (2 ** min(failures - 1, 16)))
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def open_listing(account: MailAccount, lease_token: str) -> tuple[Pop3Client, dict[str, int]]:
    """Log in to ``account`` as a sync does and list its messages, ``{uidl: message number}``.

    For work besides syncing that fetches by UIDL (``verify.repair``); the caller holds the
    account's lease, sends no DELE, and QUITs or closes the client.
    """
    session = _Session(account, SyncResult(account=account.id), lease_token)
    client = session._log_in()
    try:
        return client, session._listing(client)
    except BaseException:
        client.close()
        raise


class _Session:
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
        with contextlib.closing(self._log_in()) as client:  # closed without QUIT on error: DELEs roll back
            self._note_capabilities(client)
            listing = self._listing(client)
            known = self._known_uidls()
            new = [(uidl, number) for uidl, number in listing.items() if uidl not in known]
            MailAccount.objects.filter(id=account.id).update(
                progress_total=len(listing), progress_done=len(listing) - len(new), progress_bytes=0
            )
            if new:
                self._fetch(client, new, len(listing) - len(new))
            _crash_point("before_dele")
            to_delete = _messages_to_delete(account, self.policy, listing)
            if to_delete:
                results = client.dele_many([listing[uidl] for _kind, _pk, uidl in to_delete])
                to_delete = [item for item, error in zip(to_delete, results, strict=True) if error is None]
            _crash_point("before_quit")
            client.quit()  # raises unless the server confirms: then nothing is gone

        _crash_point("after_quit")
        self.result.deleted_on_server = _mark_gone(to_delete)
        _reconcile_missing(account, listing)
        self.result.notes = " ".join(self.notes)

    def _log_in(self) -> Pop3Client:
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
                self.result.fix = _OAUTH_REFUSED
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

    # Listing -----------------------------------------------------------------

    def _note_capabilities(self, client: Pop3Client) -> None:
        caps = client.capabilities
        if caps.login_delay:
            self.result.retry_after = caps.login_delay
            self.notes.append(f"The server allows a login every {caps.login_delay} s.")
        if caps.expire == 0:
            self.notes.append("The server deletes messages once they are downloaded (EXPIRE 0).")
        elif caps.expire:
            self.notes.append(f"The server deletes downloaded messages after {caps.expire} days (EXPIRE).")

    def _listing(self, client: Pop3Client) -> dict[str, int]:
        """``{uidl: message number}``.

        A UIDL the server (wrongly) gives to several messages keeps its first
        message; the others get ``#2``, ``#3``… in listing order, so none is lost.
        """
        try:
            pairs = client.uidl()
        except Pop3ServerError as exc:
            if isinstance(exc, Pop3TemporaryError):
                raise
            pairs = self._fingerprints(client)
        listing: dict[str, int] = {}
        seen: dict[str, int] = {}
        for number, uidl in pairs:
            seen[uidl] = seen.get(uidl, 0) + 1
            key = uidl if seen[uidl] == 1 else f"{uidl}#{seen[uidl]}"
            listing[key] = number
        if len(seen) < len(pairs):
            self.notes.append("The server gives some messages the same UIDL.")
        return listing

    def _fingerprints(self, client: Pop3Client) -> list[tuple[int, str]]:
        """No UIDL: identify each message by its size and a hash of its headers (TOP n 0)."""
        sizes = client.list()
        if client.capabilities.raw and not client.capabilities.top:  # without CAPA, just try TOP
            raise Pop3ServerError(f"{client.host} supports neither UIDL nor TOP, so messages cannot be told apart.")
        self.notes.append("The server has no UIDL: messages are recognised by size and headers.")
        digests: dict[int, hashlib._Hash] = {}

        class _Hasher:
            def __init__(self, digest):
                self.write = digest.update

        def open_out(number: int):
            digests[number] = hashlib.sha256(f"{sizes.get(number, 0)}:".encode())
            return _Hasher(digests[number])

        pairs = []
        for number, outcome in client.top_many(sorted(sizes), 0, open_out):
            if isinstance(outcome, Pop3ServerError):
                raise outcome
            pairs.append((number, "fp:" + digests[number].hexdigest()[:48]))
        return pairs

    def _known_uidls(self) -> set[str]:
        account = self.account
        live = ~Q(server_state=ServerState.GONE)
        known = set(Message.objects.filter(live, account=account).values_list("uidl", flat=True))
        known.update(UidlAlias.objects.filter(live, account=account).values_list("uidl", flat=True))
        # Quarantined and too-large messages wait for the user's "retry".
        known.update(
            FetchFailure.objects.filter(account=account)
            .filter(Q(quarantined_at__isnull=False) | Q(reason=FetchFailure.Reason.TOO_LARGE))
            .values_list("uidl", flat=True)
        )
        return known

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

        pending: list[_Retrieved] = []
        pending_bytes = 0
        accepted_bytes = 0
        self._done = already
        self._session_keys: set[tuple[str, str]] = set()
        writer = self._ingest(len(by_number))
        renewed_at = time.monotonic()
        try:
            try:
                # Raw files go into the store as they arrive; the ingest side makes each batch durable.
                with store.durability_elsewhere():
                    for count, (number, outcome) in enumerate(client.retr_many(list(by_number), open_out), start=1):
                        uidl = by_number[number]
                        if isinstance(outcome, Pop3ServerError):
                            error = f"The server refused to send it: {outcome}"
                            _record_failure(account, uidl, sizes.get(number), error)
                            result.skipped += 1
                            continue
                        tmp = temp_files.pop(number)
                        _crash_point("after_retr")
                        if quota_left is not None and accepted_bytes + outcome.size > quota_left:
                            _discard(tmp)
                            waiting = len(by_number) - count + 1
                            raise QuotaFull(
                                f"Your storage is full; {waiting} or more messages are waiting on the server."
                            )
                        tmp.close()
                        raw = self._store_raw(uidl, Path(tmp.name), outcome.size, outcome.sha256)
                        if raw is None:
                            continue
                        pending.append(_Retrieved(uidl, raw.relpath, raw.size, raw.sha256))
                        pending_bytes += outcome.size
                        accepted_bytes += outcome.size
                        if len(pending) >= self.BATCH_MESSAGES or pending_bytes >= self.BATCH_BYTES:
                            batch, pending, pending_bytes = pending, [], 0
                            writer.submit(batch)
                        if time.monotonic() - renewed_at >= self.RENEW_SECONDS:
                            renew_lease(account.id, self.lease_token)
                            renewed_at = time.monotonic()
            except (Pop3Error, QuotaFull):
                # The session broke, or storage is full: keep what arrived whole before that.
                batch, pending = pending, []
                writer.submit(batch)
                writer.finish()
                raise
            batch, pending = pending, []
            writer.submit(batch)
            writer.finish()  # every row committed before anything may be DELE'd
        finally:
            writer.abandon()  # files of batches never committed stay unreferenced: gcstorage frees them
            for tmp in temp_files.values():  # only left behind when the session broke mid-message
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
            log.exception("storing failed account=%s uidl=%s", account.id, uidl)
            _record_failure(account, uidl, size, f"{type(exc).__name__}: {exc}")
        else:
            _crash_point("after_store")
            return raw
        finally:
            path.unlink(missing_ok=True)
        self.result.skipped += 1
        return None

    def _ingest(self, count: int) -> _LocalIngest | _ForkedIngest:
        """Where retrieved batches are parsed and stored: a child process for a large download."""
        if (
            count >= settings.WEBPOP_SYNC_INGEST_PROCESS_MIN
            and hasattr(os, "fork")
            and not transaction.get_connection().in_atomic_block  # a child could not see uncommitted rows
        ):
            return _ForkedIngest(self)
        return _LocalIngest(self)

    def _prepare_batch(self, batch: list[_Retrieved]) -> _PreparedBatch:
        """Parse a batch of stored raw files and store their attachments.

        The raw files went into the store as they arrived (``_store_raw``); they
        and the attachments are made durable together, with one syncfs, by
        ``_commit_batch`` before any row points at them (on the writer thread,
        while the next batch is parsed): a crash in between leaves at worst
        unreferenced files, and nothing can be DELE'd before its row is
        committed. A message that fails is recorded and the others go on
        (invariant 3).
        """
        account, result = self.account, self.result
        ready: list[tuple[str, store.StoredFile, mime.ParsedMessage]] = []
        with store.deferred_durability() as written:
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
        return _PreparedBatch(fresh, attachments, aliases, later_copies, len(batch), written)

    def _commit_batch(self, job: _PreparedBatch) -> None:
        """Rows for a prepared batch, in one transaction (runs on the writer thread), once its files are durable."""
        account = self.account
        store.make_durable(job.files)
        _crash_point("after_sync")
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
                    self._written.skipped += 1
                    continue
                if message is None:
                    self._written.skipped += 1
                else:
                    stored.append(message)
        _crash_point("after_commit")
        try:
            threads.assign(stored)
        except Exception:  # conversations are a convenience: never lose the batch over them
            log.exception("threading failed account=%s", account.id)
        try:
            rules.apply(stored)
        except Exception:  # a broken rule must not lose the batch: the mail stays where it was delivered
            log.exception("rules failed account=%s", account.id)
        try:
            actions.wake_for_new_mail(stored)  # a reply brings its snoozed conversation back
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
        written = self._written
        written.skipped += len(aliases)
        written.fetched += len(stored)
        written.bytes += sum(message.size for message in stored)
        self._done += job.count
        done_uidls = {message.uidl for message in stored} & self._failing
        if done_uidls:
            FetchFailure.objects.filter(account=account, uidl__in=done_uidls).delete()
        MailAccount.objects.filter(id=account.id).update(progress_done=self._done, progress_bytes=written.bytes)

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


@dataclass
class _Retrieved:
    """A retrieved message, verified and in the store (not yet durable, no row yet)."""

    uidl: str
    relpath: str
    size: int
    sha256: str


@dataclass
class _PreparedBatch:
    fresh: list
    attachments: list
    aliases: list
    later_copies: dict
    count: int
    files: set  # written for this batch, made durable before its rows are committed


@dataclass
class _Written:
    fetched: int = 0
    bytes: int = 0
    skipped: int = 0


class _BatchWriter:
    """Commits prepared batches on a second thread while the session keeps reading.

    The database's work then overlaps the network and parsing. Batches are
    committed in order; ``finish()`` waits for all of them and re-raises a
    writer error. Inside an open transaction (a test, or a caller's atomic
    block) a second connection could not see its rows, so batches are then
    committed inline.
    """

    def __init__(self, session: _Session):
        self.session = session
        session._written = _Written()
        session._stored_keys = {}
        self.inline = transaction.get_connection().in_atomic_block
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.finished = False

    def submit(self, job: _PreparedBatch) -> None:
        if self.error is not None:
            raise self.error
        if self.inline:
            self.session._commit_batch(job)
            return
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="webpop-batch-writer", daemon=True)
            self.thread.start()
        self.queue.put(job)

    def _run(self) -> None:
        try:
            while (job := self.queue.get()) is not None:
                if self.error is None:
                    try:
                        self.session._commit_batch(job)
                    except BaseException as exc:
                        self.error = exc
        finally:
            db_connection.close()

    def finish(self) -> None:
        self._join()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """On the way out after an error: wait for what was queued (it is safe to commit)."""
        self._join()

    def _join(self) -> None:
        if self.thread is not None and not self.finished:
            self.finished = True
            self.queue.put(None)
            self.thread.join()
        written, result = self.session._written, self.session.result
        result.fetched += written.fetched
        result.bytes += written.bytes
        result.skipped += written.skipped
        self.session._written = _Written()


class _LocalIngest:
    """Parse and store batches in this process (files here, rows on the writer thread)."""

    def __init__(self, session: _Session):
        self.session = session
        self.writer = _BatchWriter(session)

    def submit(self, batch: list[_Retrieved]) -> None:
        self.writer.submit(self.session._prepare_batch(batch))

    def finish(self) -> None:
        self.writer.finish()

    def abandon(self) -> None:
        self.writer.abandon()


class IngestProcessError(Exception):
    """The ingest child failed or died: what it acknowledged as committed stands, nothing else."""


class _ForkedIngest:
    """Parse and store batches in a forked child while this process keeps reading from the server.

    The child runs a :class:`_LocalIngest` on its own database connection and
    acknowledges each batch; at most ``MAX_UNACKED`` batches are outstanding,
    so temp files and memory stay bounded. ``finish()`` returns only when the
    child reports every batch committed: nothing may be DELE'd before that.
    The child dies with this process (``PR_SET_PDEATHSIG``), so a killed
    worker leaves no orphan writing behind it.
    """

    MAX_UNACKED = 2

    def __init__(self, session: _Session):
        self.session = session
        self.unacked = 0
        self.finished = False
        # The child must not share this process's database socket: both reconnect.
        db_connections.close_all()
        parent_pid = os.getpid()
        self.conn, child_conn = multiprocessing.Pipe()
        pid = os.fork()
        if pid == 0:
            self.conn.close()
            _ingest_child(session, child_conn, parent_pid)
        child_conn.close()
        self.pid = pid

    def submit(self, batch: list[_Retrieved]) -> None:
        while self.unacked >= self.MAX_UNACKED:
            self._receive()
        try:
            self.conn.send([astuple(item) for item in batch])
        except OSError:
            self._receive()  # the child is gone: report why
            raise IngestProcessError("the ingest process stopped reading") from None
        self.unacked += 1

    def _receive(self) -> dict | None:
        try:
            kind, payload = self.conn.recv()
        except (EOFError, OSError):
            raise IngestProcessError("the ingest process died") from None
        if kind == "error":
            raise IngestProcessError(payload)
        if kind == "ack":
            self.unacked -= 1
            return None
        return payload

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            with contextlib.suppress(OSError):  # the child is gone: _receive says why
                self.conn.send(None)
            while (done := self._receive()) is None:
                pass
        finally:
            self._reap()
        result = self.session.result
        result.fetched += done["fetched"]
        result.bytes += done["bytes"]
        result.skipped += done["skipped"]
        result.ingest_peak_rss_kb = done["peak_rss_kb"]

    def abandon(self) -> None:
        """On the way out after an error: let the child commit what it has (safe), then reap it."""
        if self.finished:
            return
        try:
            self.finish()
        except IngestProcessError as exc:
            log.warning("ingest process account=%s: %s", self.session.account.id, exc)

    def _reap(self) -> None:
        self.conn.close()
        os.waitpid(self.pid, 0)


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # it died before the line above took effect
        os._exit(1)


def _ingest_child(session: _Session, conn, parent_pid: int) -> NoReturn:
    """The body of a :class:`_ForkedIngest` child: never returns."""
    global _ingest_parent_pid
    code = 0
    try:
        _ingest_parent_pid = parent_pid
        _die_with_parent(parent_pid)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)  # not the worker's handlers
        session.result = SyncResult(account=session.account.id)  # counts of this child only
        ingest = _LocalIngest(session)
        try:
            while (items := conn.recv()) is not None:
                ingest.submit([_Retrieved(*item) for item in items])
                conn.send(("ack", None))
            ingest.finish()
        except BaseException as exc:
            code = 1
            ingest.abandon()
            log.exception("ingest process failed account=%s", session.account.id)
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        else:
            result = session.result
            done = {"fetched": result.fetched, "bytes": result.bytes, "skipped": result.skipped}
            conn.send(("done", done | {"peak_rss_kb": _peak_rss_kb()}))
    except BaseException:
        code = 1
    finally:
        db_connections.close_all()
        os._exit(code)


def _peak_rss_kb() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _discard(tmp: BinaryIO) -> None:
    tmp.close()
    Path(tmp.name).unlink(missing_ok=True)


def _quota_left(account: MailAccount) -> int | None:
    profile = Profile.objects.filter(user_id=account.owner_id).first()
    quota = profile.effective_quota_bytes if profile else Profile(user_id=account.owner_id).effective_quota_bytes
    if quota is None:
        return None
    used = (
        Message.objects.filter(owner_id=account.owner_id).exclude(folder="purged").aggregate(total=Sum("size"))["total"]
        or 0
    )
    if used >= quota:
        raise QuotaFull("Your storage is full: new mail stays on the server until you make room.")
    return quota - used


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


def _messages_to_delete(account: MailAccount, policy, listing: dict[str, int]) -> list[tuple[str, int, str]]:
    """``(kind, pk, uidl)`` of committed copies the policy says to DELE now, still on the server."""
    conditions = Q(server_state=ServerState.DELETE_PENDING) if policy.mirror else Q(pk__in=[])
    if policy.delete_after_fetch:
        conditions |= Q(server_state=ServerState.ON_SERVER)
    if policy.delete_after_days is not None:
        cutoff = timezone.now() - dt.timedelta(days=policy.delete_after_days)
        conditions |= Q(server_state=ServerState.ON_SERVER, received_at__lte=cutoff)
    rows = Message.objects.filter(conditions, account=account).exclude(server_state=ServerState.GONE)
    found = [("message", pk, uidl) for pk, uidl in rows.values_list("id", "uidl") if uidl in listing]
    # Re-listed copies go with the message they duplicate.
    message_ids = {pk for _kind, pk, _uidl in found} if not policy.delete_after_fetch else None
    aliases = UidlAlias.objects.filter(account=account).exclude(server_state=ServerState.GONE)
    if message_ids is not None:
        aliases = aliases.filter(message_id__in=message_ids)
    found += [("alias", pk, uidl) for pk, uidl in aliases.values_list("id", "uidl") if uidl in listing]
    return found


def _mark_gone(deleted: list[tuple[str, int, str]]) -> int:
    messages = [pk for kind, pk, _uidl in deleted if kind == "message"]
    aliases = [pk for kind, pk, _uidl in deleted if kind == "alias"]
    with transaction.atomic():
        count = Message.objects.filter(id__in=messages).update(server_state=ServerState.GONE)
        UidlAlias.objects.filter(id__in=aliases).update(server_state=ServerState.GONE)
        # Tombstones of mail the user deleted for good are no longer needed once the server copy is gone.
        Message.objects.filter(id__in=messages, folder="purged").delete()
    return count


def _reconcile_missing(account: MailAccount, listing: dict[str, int]) -> None:
    """Copies the server no longer lists are gone (deleted elsewhere, or expired)."""
    live = Message.objects.filter(account=account).exclude(server_state=ServerState.GONE)
    missing = [pk for pk, uidl in live.values_list("id", "uidl") if uidl not in listing]
    if missing:
        Message.objects.filter(id__in=missing).update(server_state=ServerState.GONE)
        Message.objects.filter(id__in=missing, folder="purged").delete()


# --- User actions ---------------------------------------------------------------


@transaction.atomic
def retry_failure(failure: FetchFailure) -> None:
    """The user asked to try a quarantined message again: forget its failures (and kept bytes), poll soon."""
    storage_gc.release(storage_refs.files_of("failure", [failure.id]))
    FetchFailure.objects.filter(id=failure.id).delete()
    MailAccount.objects.filter(id=failure.account_id, enabled=True).update(next_poll_at=timezone.now())
