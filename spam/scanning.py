"""Judging new mail after it is stored: rspamd, or the provider's headers, then the user's own say.

A sweep claims due PendingScan rows (a conditional update: each row has one taker; a claim
lapses after ``LEASE`` should its worker die; an account's rows wait while its sync runs),
judges their messages and, in one transaction,
files each verdict and deletes its row: a message is judged once. Nothing here can hold up
ingest (invariant 9): the mail is in the Inbox already, and a scan that fails leaves it there
and is tried again later. When rspamd cannot be reached at all the batch is put back untouched
(its tries do not count against the messages) and the sweep stops until the next tick.

The same pass records who vouches for the sender (spam/trust.py: rspamd's DKIM, SPF and DMARC
symbols, or the trusted Authentication-Results) in a SenderTrust row, for the message's header;
mail from trusted senders is checked too (a forged contact is the classic trick), only never filed.

Verdicts: "spam" moves the message to Spam, if it is still where ingest put it (a rule or the
user may have filed it since: then it is only marked); "probable" marks it. Mail from someone
the user wrote to (contacts) or marked "Not spam" (SafeSender) is never judged. By default
rspamd's actions decide (from "add header" on: Spam; "greylist": probably spam); a user's
thresholds (SpamSettings) compare rspamd's score instead.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from contacts.models import ContactEmail
from mailbox import damage
from mailbox.models import Folder, Message
from push import actions as push_actions
from webpop.lib import pagecache

from . import filtering, health, provider, rspamd, trust
from .filtering import Mode
from .models import PendingScan, SafeSender, SenderTrust, SpamSettings

log = logging.getLogger(__name__)

BATCH = 100
LEASE = dt.timedelta(minutes=5)  # a claimed batch comes due again if its worker dies
UNAVAILABLE_RETRY = dt.timedelta(seconds=30)  # rspamd unreachable: the whole batch, at most once a tick
MAX_ATTEMPTS = 6  # failed scans of one message before it is left unjudged (in the Inbox)
MAX_RUN_SECONDS = 120  # one task's share: a long backlog is left to the next one
SPAM = provider.SPAM
PROBABLE = provider.PROBABLE


@dataclass
class ScanReport:
    judged: int = 0  # scanned, or left alone on purpose (trusted sender, Sent, too large)
    spam: int = 0
    probable: int = 0
    failed: int = 0  # tries that failed (the message is tried again, or given up after MAX_ATTEMPTS)
    postponed: int = 0  # put back because rspamd could not be reached
    unavailable: str = ""  # why rspamd could not be reached, if it could not
    counts: health.Counts = field(default_factory=health.Counts)


def retry_delay(attempts: int) -> dt.timedelta:
    """1, 4, 16, 64 minutes … after the first, second, third … failed try of a message."""
    return dt.timedelta(minutes=min(4 ** max(attempts - 1, 0), 24 * 60))


def scan_due(*, now: dt.datetime | None = None, limit: int = BATCH) -> ScanReport:
    """Beat, every tick, and after a sync stored mail: judge the messages whose scan is due."""
    report = ScanReport()
    started = time.monotonic()
    client = filtering.client() if filtering.rspamd_configured() else None
    while time.monotonic() - started < MAX_RUN_SECONDS:
        token, rows = _claim(limit, now)
        if not rows:
            break
        _scan_batch(token, rows, client, report, now)
        if report.unavailable or len(rows) < limit:
            break
    health.record(report.counts)  # in the hour it happened (``now`` only decides what is due)
    return report


def due(now: dt.datetime):
    """Scans whose time has come, of accounts no sync is storing mail for.

    An account's new mail waits while its sync holds the lease (invariant 4): the sync's
    ingest never shares the machine with scanning its own mail (bench/RESULTS.md, "spam"),
    and the sync wakes the sweep when it is done (mailbox/tasks.py).
    """
    return PendingScan.objects.filter(not_before__lte=now).exclude(message__account__sync_lease_until__gt=now)


def _claim(limit: int, now: dt.datetime | None) -> tuple[str, list[PendingScan]]:
    now = now or timezone.now()
    due_ids = list(due(now).order_by("not_before", "message_id").values_list("message_id", flat=True)[:limit])
    if not due_ids:
        return "", []
    token = secrets.token_hex(16)
    claimed = PendingScan.objects.filter(message_id__in=due_ids, not_before__lte=now).update(
        not_before=now + LEASE, claim=token
    )
    if not claimed:  # another sweep took them all
        return token, []
    return token, list(PendingScan.objects.filter(message_id__in=due_ids, claim=token))


@dataclass
class _Job:
    row: PendingScan
    message: Message
    mode: Mode
    verdict: str = ""
    score: float | None = None
    error: Exception | None = None
    trusted: bool = False  # from someone the user wrote to or marked "Not spam": checked, never filed
    auth: trust.Auth | None = None  # None: not checked (no SenderTrust row)
    reply_to: str = ""


def _scan_batch(token: str, rows: list[PendingScan], client, report: ScanReport, now) -> None:
    messages = Message.objects.filter(id__in=[row.message_id for row in rows]).select_related("account")
    by_id = {m.id: m for m in messages}
    jobs = [_Job(row, by_id[row.message_id], Mode.RULES) for row in rows if row.message_id in by_id]
    trusted = _trusted_senders(jobs)
    thresholds = {s.user_id: s for s in SpamSettings.objects.filter(user_id__in={j.message.owner_id for j in jobs})}
    to_rspamd = []
    for job in jobs:
        message = job.message
        if message.folder in (Folder.SENT, Folder.PURGED) or not message.raw_path:
            continue  # webpop's own copy of what the user sent, or deleted for good meanwhile
        job.trusted = (message.owner_id, message.from_email.lower()) in trusted
        job.mode = filtering.mode_for(message.account)
        if job.mode is Mode.PROVIDER:
            _provider_verdict(job)
        elif job.mode is Mode.RSPAMD and message.size <= settings.WEBPOP_RSPAMD_MAX_BYTES and client is not None:
            to_rspamd.append(job)
    if to_rspamd:
        _ask_rspamd(client, to_rspamd, thresholds, report)
    _file(token, jobs, report, now)


def _trusted_senders(jobs: list[_Job]) -> set[tuple[int, str]]:
    """(owner, address) pairs among the senders of ``jobs`` the owner wrote to or marked "Not spam"."""
    owners = {job.message.owner_id for job in jobs}
    addresses = {job.message.from_email.lower() for job in jobs if job.message.from_email}
    if not addresses:
        return set()
    written_to = ContactEmail.objects.filter(
        owner_id__in=owners, address_key__in=addresses, contact__times_contacted__gt=0
    ).values_list("owner_id", "address_key")
    marked = SafeSender.objects.filter(owner_id__in=owners, address__in=addresses).values_list("owner_id", "address")
    return set(written_to) | set(marked)


def _provider_verdict(job: _Job) -> None:
    try:
        with damage.open_checked(job.message.raw_path, job.message.sha256) as fh:  # marks a damaged one
            block = provider.read_header_block(fh)
    except OSError as exc:
        _unreadable(job, exc)
        return
    authserv_id = job.message.account.spam_authserv_id
    job.verdict = provider.verdict(block, authserv_id).kind
    headers = _headers(block)
    job.auth = trust.from_authentication_results(headers.get_all("Authentication-Results") or [], authserv_id)
    job.reply_to = str(headers.get("Reply-To") or "")


def _headers(block: bytes):
    return BytesHeaderParser(policy=compat32).parsebytes(block + b"\r\n")


def _rspamd_auth(job: _Job, result: rspamd.Result, data: bytes) -> None:
    headers = _headers(provider.read_header_block(io.BytesIO(data)))
    envelope = str(headers.get("Return-Path") or "").strip().strip("<>").rpartition("@")[2]
    job.auth = trust.from_rspamd(result.options, envelope_domain=envelope)
    job.reply_to = str(headers.get("Reply-To") or "")


def _ask_rspamd(client: rspamd.Client, jobs: list[_Job], thresholds: dict, report: ScanReport) -> None:
    def scan(job: _Job) -> rspamd.Result | Exception:
        try:
            data = damage.read_whole(job.message.raw_path, job.message.sha256)  # marked below, in this thread
            result = client.check(data, user=filtering.bayes_user(job.message.owner_id))
        except (OSError, rspamd.Unavailable, rspamd.Failed) as exc:
            return exc
        _rspamd_auth(job, result, data)
        return result

    with ThreadPoolExecutor(max_workers=min(settings.WEBPOP_RSPAMD_CONCURRENCY, len(jobs))) as pool:
        results = list(pool.map(scan, jobs))
    latency = None
    for job, result in zip(jobs, results, strict=True):
        if isinstance(result, rspamd.Unavailable):
            job.error = result
            report.unavailable = str(result)
            continue
        if isinstance(result, damage.DamagedFileError):
            damage.mark(result.relpath, job.message.sha256, result.kind)
        if isinstance(result, Exception):
            _unreadable(job, result)
            continue
        if result.skipped:  # "soft reject": rspamd asks to be asked again later
            job.error = rspamd.Failed(f"rspamd answered {result.action!r}")
            continue
        latency = result.seconds
        report.counts.rspamd_scans += 1
        report.counts.rspamd_seconds += result.rspamd_seconds
        report.counts.request_seconds += result.seconds
        job.score = result.score
        job.verdict = judge(result, thresholds.get(job.message.owner_id))
    if latency is not None:
        health.answered(latency)
    if report.unavailable:
        log.warning("spam: rspamd unavailable, scans postponed: %s", report.unavailable)
        health.failed(report.unavailable)


def _unreadable(job: _Job, exc: Exception) -> None:
    """Garbage is never judged: a damaged original is a failed scan, tried again once it may be repaired."""
    job.error = exc
    if isinstance(exc, damage.DamagedFileError):
        log.warning("spam: not scanning message %s: its stored original is %s", job.message.id, exc.kind)


def judge(result: rspamd.Result, thresholds: SpamSettings | None) -> str:
    """SPAM, PROBABLE or "" for rspamd's ``result``, by the user's thresholds or else rspamd's action."""
    spam_at = thresholds.spam_score if thresholds else None
    probable_at = thresholds.probable_score if thresholds else None
    if spam_at is None:
        is_spam = result.action in rspamd.SPAM_ACTIONS
    else:
        is_spam = result.score >= spam_at
    if probable_at is None:
        is_probable = result.action in (rspamd.GREYLIST, *rspamd.SPAM_ACTIONS)  # under a user's higher Spam bar too
    else:
        is_probable = result.score >= probable_at
    return SPAM if is_spam else PROBABLE if is_probable else ""


def _file(token: str, jobs: list[_Job], report: ScanReport, now) -> None:
    """Each verdict into its message, and the done rows deleted, in one transaction."""
    now = now or timezone.now()
    done, owners = [], set()
    with transaction.atomic():
        for job in jobs:
            if job.error is not None:
                _failed(token, job, report, now)
                continue
            done.append(job.row.message_id)
            report.judged += 1
            if job.mode is not Mode.RULES:
                report.counts.scanned += 1
            if job.verdict and not job.trusted:
                owners.add(job.message.owner_id)
                _file_verdict(job, report)
        checked = [SenderTrust.of(j.message.id, j.auth, j.reply_to) for j in jobs if j.auth and j.error is None]
        SenderTrust.objects.filter(message_id__in=[row.message_id for row in checked]).delete()
        SenderTrust.objects.bulk_create(checked)
        PendingScan.objects.filter(message_id__in=done, claim=token).delete()
        pagecache.touch(owners)
        # The conversation page's sender-trust line reads the rows just written.
        pagecache.touch_message_pages({j.message.owner_id for j in jobs if j.auth and j.error is None})
        # New-mail notifications wait for the scan (push.actions.new_inbox_mail): judged mail may be new.
        for owner_id in sorted({job.message.owner_id for job in jobs if job.error is None}):
            push_actions.new_mail_stored(owner_id)


def _file_verdict(job: _Job, report: ScanReport) -> None:
    message = job.message
    delivered = message.account.deliver_to or Folder.INBOX
    rows = Message.objects.filter(id=message.id)
    if job.verdict == SPAM and (
        rows.filter(folder=delivered).update(folder=Folder.SPAM, spam_verdict=SPAM, spam_score=job.score)
        or rows.filter(folder=Folder.SPAM).update(spam_verdict=SPAM, spam_score=job.score)  # a rule's doing
    ):
        report.spam += 1
        report.counts.spam += 1
        return
    # Probably spam, or spam that a rule or the user filed elsewhere meanwhile: marked where it is.
    rows.exclude(folder=Folder.SPAM).update(spam_verdict=PROBABLE, spam_score=job.score)
    report.probable += 1
    report.counts.probable += 1


def _failed(token: str, job: _Job, report: ScanReport, now: dt.datetime) -> None:
    row = PendingScan.objects.filter(message_id=job.row.message_id, claim=token)
    error = str(job.error)[:200]
    if isinstance(job.error, rspamd.Unavailable):
        row.update(not_before=now + UNAVAILABLE_RETRY, claim="", error=error)
        report.postponed += 1
        return
    report.failed += 1
    report.counts.failed += 1
    attempts = job.row.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        log.warning("spam: giving up on scanning message %s after %s tries: %s", job.message.id, attempts, error)
        row.delete()  # it stays where ingest put it, unjudged
        return
    row.update(not_before=now + retry_delay(attempts), claim="", attempts=attempts, error=error)


def check_health() -> None:
    """When there was nothing to scan: ask rspamd whether it is up, so the dashboard knows."""
    if not filtering.rspamd_configured():
        return
    try:
        latency = filtering.client().ping()
    except (rspamd.Unavailable, rspamd.Failed) as exc:
        health.failed(str(exc))
    else:
        health.answered(latency)
