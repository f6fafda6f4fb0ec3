"""What a sync did, recorded on the account: counts, the error and what the user can do about it,
when to poll next (backoff), and what the session learned about the server."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import asdict, dataclass, field

from django.db.models import Case, F, Value, When
from django.utils import timezone

from accounts.models import MailAccount

from .. import server_memory
from ..models import SyncRun
from ..pop3 import Pop3Error, Pop3TemporaryError, ScramCache, ServerProfile
from . import schedule

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
    fix: str = field(default="", repr=False)  # what the user can do, when it differs from the error class's
    # The listing this sync left with nothing to do (schedule.listing_digest); "" when something is left.
    listing_digest: str = field(default="", repr=False)
    listing_length: int = field(default=0, repr=False)  # how many UIDLs the digest covers
    deletion_due_at: dt.datetime | None = field(default=None, repr=False)  # when the policy next deletes

    def failed(self, exc: Pop3Error) -> None:
        """Record a POP3 error; a server that asks for LOGIN-DELAY is not asked again for 15 minutes."""
        self.error_class = exc.error_class
        self.error = f"{exc.error_class}: {exc}"
        if isinstance(exc, Pop3TemporaryError) and exc.code == "LOGIN-DELAY":
            self.retry_after = max(self.retry_after, 900)

    def as_json(self) -> dict:
        data = {key: value for key, value in asdict(self).items() if key in _JSON_FIELDS}
        data["seconds"] = round(self.seconds, 3)
        return data


_JSON_FIELDS = ("account", "fetched", "deleted_on_server", "skipped", "error", "seconds")


def record_outcome(account: MailAccount, result: SyncResult, run: SyncRun | None) -> None:
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
        interval = schedule.next_interval(
            account.current_interval, account.poll_interval, account.poll_interval_max, got_mail=result.fetched > 0
        )
        if result.more_pending:
            next_poll = now  # the next chunk of a big first sync, right away
        else:
            next_poll = now + dt.timedelta(seconds=max(schedule.jittered(interval), result.retry_after))
        MailAccount.objects.filter(id=account.id).update(
            last_success_at=now,
            last_error_class="",
            last_error="",
            consecutive_failures=0,
            next_poll_at=next_poll,
            current_interval=interval,
            sync_notes=result.notes,
            listing_digest=result.listing_digest,
            listing_length=result.listing_length,
            deletion_due_at=result.deletion_due_at,
            **_learned(account, result),
        )
        return
    if result.error_class == "busy":
        return  # not a failure of the account
    if result.error_class == "stopped":  # the worker stopped (webpop/lib/shutdown.py): not the account's fault
        MailAccount.objects.filter(id=account.id).update(next_poll_at=now, listing_digest="")
        return
    failures = account.consecutive_failures + 1
    delay = max(_backoff(account.poll_interval, failures, result.error_class).total_seconds(), result.retry_after)
    updates = {
        "last_error_class": result.error_class[:20],
        "last_error": _explain(result),
        "consecutive_failures": F("consecutive_failures") + 1,
        "next_poll_at": now + dt.timedelta(seconds=delay),
        "listing_digest": "",  # whatever went wrong, the next poll that works is a full sync
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
    "disk_full": "The administrator is alerted on the dashboard. Nothing was deleted from your mail server; "
    "fetching resumes by itself once there is space.",
}
DISK_FULL = "webpop's own disk is full, so no new mail can be stored for now."


RECONNECT = "Sign in again with Reconnect on the account page; until then no mail is fetched."
OAUTH_REFUSED = (
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
