"""The no-change check: "anything new?" for many accounts at once, in one worker process.

Almost every poll a host makes finds nothing new. A check is that poll and no more: log in with what
the last session learned about the server (no CAPA), UIDL and QUIT pipelined behind the login, and
compare the listing's digest with the one the last complete sync stored (``listing_digest``). The
sessions run on asyncio, many at once; the database is read once for the whole batch before they
start and written once after they end, so no session holds a database connection and a slow server
holds one slot until its deadline, never the batch.

A check never fetches and never deletes. Whatever needs either goes to ``engine.sync_account``, the
crash-safe path: a changed listing, a deletion the policy has due, an account a check cannot settle
(OAuth, no digest yet). A failed check is recorded as a failed sync would be.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts import crypto
from accounts.models import MailAccount
from oauth.models import Grant
from webpop.lib import shutdown

from .. import server_memory
from ..models import Message, ServerState
from ..pop3 import Pop3AuthError, Pop3Error, Pop3TimeoutError, ScramCache, ServerProfile
from ..pop3.aio import AsyncPop3Client
from ..pop3_login import AsyncPasswordLogin
from . import schedule
from .connection import client_for, refused_method_fix
from .outcome import SyncResult, record_outcome

log = logging.getLogger(__name__)

_FIELDS = (
    "id",
    "owner_id",
    "host",
    "port",
    "security",
    "username",
    "password_encrypted",
    "auth_mechanism",
    "working_auth_mechanism",
    "server_profile",
    "scram_cache_encrypted",
    "tls_fingerprint",
    "policy",
    "poll_interval",
    "poll_interval_max",
    "current_interval",
    "listing_digest",
    "deletion_due_at",
    "consecutive_failures",
)


@dataclass
class Check:
    """One account's check: what it starts from and what it found."""

    account: MailAccount
    password: str
    profile: ServerProfile
    scram_cache: ScramCache
    digest: str = ""  # of what the server lists now
    error: Pop3Error | None = None
    remember: str = ""  # the login method to remember
    stopped: bool = False  # cut short because the worker is stopping: due again at once
    learned: ServerProfile | None = field(default=None, repr=False)


@dataclass
class Outcome:
    unchanged: list[int] = field(default_factory=list)
    to_sync: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)


def plan(account_ids: list[int], now: dt.datetime | None = None) -> tuple[list[Check], list[int]]:
    """The batch's accounts in one query: those a check can settle, and the ids that need a sync."""
    now = now or timezone.now()
    accounts = (
        MailAccount.objects.filter(id__in=account_ids, enabled=True, owner__is_active=True)
        .only(*_FIELDS)
        .annotate(
            signs_in_with_oauth=Exists(Grant.objects.filter(account_id=OuterRef("id"))),
            deletes_pending=Exists(
                Message.objects.filter(account_id=OuterRef("id"), server_state=ServerState.DELETE_PENDING)
            ),
        )
    )
    checks: list[Check] = []
    to_sync: list[int] = []
    for account in accounts:
        if (
            not account.listing_digest
            or account.signs_in_with_oauth
            or (account.deletes_pending and account.parsed_policy.mirror)
            or (account.deletion_due_at is not None and account.deletion_due_at <= now)
        ):
            to_sync.append(account.id)
            continue
        try:
            password = account.get_password()
        except crypto.DecryptionError:
            to_sync.append(account.id)  # the sync says what is wrong, as it always has
            continue
        checks.append(
            Check(account, password, server_memory.server_profile(account), server_memory.scram_cache(account))
        )
    return checks, to_sync


def _client_factory(account: MailAccount, deadline: float):
    def new_client(profile: ServerProfile | None) -> AsyncPop3Client:
        return client_for(
            account.host,
            account.port,
            account.security,
            fingerprint=account.tls_fingerprint,
            profile=profile,
            driver=AsyncPop3Client,
            session_timeout=deadline,
        )

    return new_client


async def _check_one(check: Check, host_slots: asyncio.Semaphore, slots: asyncio.Semaphore, deadline: float) -> None:
    account = check.account
    login = AsyncPasswordLogin(
        _client_factory(account, deadline),
        account.username,
        check.password,
        allow_plaintext=account.security == "none",
        chosen=account.auth_mechanism,
        remembered=account.working_auth_mechanism,
        profile=check.profile,
        scram_cache=check.scram_cache,
        then=("UIDL", "QUIT"),
    )
    async with host_slots, slots:
        if shutdown.requested():
            check.stopped = True
            return
        try:
            async with asyncio.timeout(deadline):
                client = await login.open()
                try:
                    pairs = await client.uidl()
                    await client.quit()
                finally:
                    client.close()
            check.learned = client.profile
            listing = schedule.listing_keys(pairs)
            check.digest = schedule.listing_digest(listing, identity=schedule.identity(account))
        except TimeoutError:
            check.error = Pop3TimeoutError(f"{account.host} did not finish a check within {deadline:g} s.")
        except Pop3Error as exc:
            check.error = exc
        except Exception as exc:  # one account's surprise never ends the batch
            log.exception("check failed account=%s", account.id)
            check.error = Pop3Error(f"internal: {type(exc).__name__}")
            check.error.error_class = "internal"
        finally:
            check.remember = login.remember


async def run_checks(checks: list[Check], *, concurrency: int, per_host: int, deadline: float) -> None:
    """Check every account, at most ``concurrency`` at once and ``per_host`` on any one server."""
    slots = asyncio.Semaphore(concurrency)
    by_host: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(per_host))
    running = [
        asyncio.ensure_future(_check_one(check, by_host[check.account.host.lower()], slots, deadline))
        for check in checks
    ]
    watcher = asyncio.ensure_future(_cancel_on_shutdown(running))
    try:
        await asyncio.gather(*running, return_exceptions=True)
    finally:
        watcher.cancel()
    for check, future in zip(checks, running, strict=True):
        check.stopped = check.stopped or future.cancelled()


async def _cancel_on_shutdown(running: list[asyncio.Future]) -> None:
    """The worker is stopping: end the checks in flight now (a check changes nothing until it ends)."""
    while not shutdown.requested():
        await asyncio.sleep(shutdown.WATCH_SECONDS)
    for future in running:
        future.cancel()


def check_accounts(account_ids: list[int]) -> Outcome:
    """Check a batch of due accounts; the returned ``to_sync`` ids are for ``engine.sync_account``."""
    checks, to_sync = plan(account_ids)
    outcome = Outcome(to_sync=to_sync)
    if checks:
        asyncio.run(
            run_checks(
                checks,
                concurrency=settings.WEBPOP_CHECK_CONCURRENCY,
                per_host=settings.WEBPOP_CHECK_PER_HOST,
                deadline=float(settings.WEBPOP_CHECK_DEADLINE),
            )
        )
    unchanged: list[Check] = []
    stopped = [check.account.id for check in checks if check.stopped]
    if stopped:  # claimed by this batch, left unchecked: due at once, not when the claim lapses
        MailAccount.objects.filter(id__in=stopped).update(next_poll_at=timezone.now())
    for check in checks:
        if check.stopped:
            continue
        if check.error is not None:
            _record_failure(check)
            outcome.failed.append(check.account.id)
        elif check.digest == check.account.listing_digest:
            unchanged.append(check)
        else:
            outcome.to_sync.append(check.account.id)
        _remember(check)
    if unchanged:
        _record_unchanged(unchanged)
    outcome.unchanged = [check.account.id for check in unchanged]
    outcome.stopped = stopped
    log.info(
        "check accounts=%s unchanged=%s to_sync=%s failed=%s stopped=%s",
        len(account_ids),
        len(outcome.unchanged),
        len(outcome.to_sync),
        len(outcome.failed),
        len(stopped),
    )
    return outcome


def _record_unchanged(checks: list[Check]) -> None:
    """One UPDATE per thousand accounts: checked, nothing new, when to look again.

    Each account has its own next poll (jitter, its interval), so the values go in as a VALUES list
    joined on the id; ``bulk_update`` would build a CASE of one WHEN per account and field, which costs
    more CPU than the check itself.
    """
    now = timezone.now()
    rows = []
    for check in checks:
        account = check.account
        login_delay = check.learned.post_login().login_delay if check.learned else 0
        interval = schedule.next_interval(
            account.current_interval, account.poll_interval, account.poll_interval_max, got_mail=False
        )
        wait = max(schedule.jittered(interval), login_delay or 0)
        rows.append((account.id, now + dt.timedelta(seconds=wait), interval))
    table = connection.ops.quote_name(MailAccount._meta.db_table)
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        values = ", ".join(["(%s, %s, %s)"] * len(chunk))
        # Only the table's name and placeholders are formatted in; every value is a parameter.
        sql = (
            f"UPDATE {table} SET next_poll_at = v.column2, current_interval = v.column3, "  # noqa: S608
            f"last_attempt_at = %s, last_success_at = %s FROM (VALUES {values}) AS v WHERE {table}.id = v.column1"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [now, now, *(value for row in chunk for value in row)])


def _record_failure(check: Check) -> None:
    """As a failed sync is recorded: the error and its fix on the account page, backoff, a digest no longer trusted."""
    exc = check.error
    assert exc is not None
    result = SyncResult(account=check.account.id)
    result.failed(exc)
    if isinstance(exc, Pop3AuthError):
        result.fix = refused_method_fix(exc, chosen=bool(check.account.auth_mechanism))
    MailAccount.objects.filter(id=check.account.id).update(last_attempt_at=timezone.now())
    record_outcome(check.account, result, None)


def _remember(check: Check) -> None:
    """What the login learned (rarely anything: the profile is only re-learned when it is old)."""
    account = check.account
    updates = {}
    if check.remember != account.working_auth_mechanism:
        updates["working_auth_mechanism"] = check.remember
    if check.learned is not None and check.error is None:
        profile = check.learned.to_json()
        if profile != account.server_profile:
            updates["server_profile"] = profile
    if check.scram_cache.changed and check.error is None:
        updates["scram_cache_encrypted"] = server_memory.encrypt_scram_cache(check.scram_cache)
    if updates:
        MailAccount.objects.filter(account.same_server_condition()).update(**updates)
