"""Training rspamd's Bayes with what users mark "Spam" or "Not spam", one user's statistics each.

Marking writes a PendingLearn row in the transaction that moves the message, and
spam/actions.py wakes a worker after commit (this module, which the task runs, publishes
nothing); the sweep here sends each to rspamd's controller and deletes the row, so a lost
wake-up or a stopped rspamd only delays training (invariant 8). rspamd learns a message once
per class; a message learned already counts as done.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from dataclasses import dataclass, field

from django.utils import timezone

from mailbox import damage

from . import filtering, health, rspamd
from .models import PendingLearn
from .scanning import LEASE, MAX_ATTEMPTS, MAX_RUN_SECONDS, UNAVAILABLE_RETRY, retry_delay

log = logging.getLogger(__name__)

BATCH = 50


def learn_later(owner_id: int, message_ids: list[int], *, spam: bool) -> int:
    """Inside the caller's transaction: train ``owner_id``'s Bayes with these messages (when rspamd is set up)."""
    if not message_ids or not filtering.rspamd_configured():
        return 0
    now = timezone.now()
    rows = [
        PendingLearn(message_id=pk, owner_id=owner_id, spam=spam, not_before=now, created_at=now) for pk in message_ids
    ]
    # Marked again before it was learned: the newer mark wins (and a sweep holding the row no longer does).
    PendingLearn.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["message"],
        update_fields=["spam", "not_before", "claim", "attempts", "error", "created_at"],
    )
    return len(rows)


def cancel(owner_id: int, message_ids: list[int]) -> int:
    """A mark was undone before its training ran: forget the training."""
    return PendingLearn.objects.filter(owner_id=owner_id, message_id__in=list(message_ids)).delete()[0]


@dataclass
class LearnReport:
    learned: int = 0
    known: int = 0  # rspamd had learned it already
    failed: int = 0
    postponed: int = 0
    unavailable: str = ""
    counts: health.Counts = field(default_factory=health.Counts)


def learn_due(*, now: dt.datetime | None = None, limit: int = BATCH) -> LearnReport:
    """Beat, every tick, and after a mark: send due training to rspamd."""
    report = LearnReport()
    if not filtering.rspamd_configured():
        return report  # the rows wait: training resumes when rspamd is set up again
    client = filtering.client()
    started = time.monotonic()
    while time.monotonic() - started < MAX_RUN_SECONDS:
        token, rows = _claim(limit, now)
        if not rows:
            break
        for row in rows:
            if report.unavailable:
                _postpone(row, token, report, now)
            else:
                _learn(client, row, token, report, now)
        if report.unavailable or len(rows) < limit:
            break
    if report.unavailable:
        health.failed(report.unavailable, service=health.CONTROLLER)
    elif report.learned or report.known:
        health.answered(None, service=health.CONTROLLER)
    report.counts.learned = report.learned
    health.record(report.counts)  # in the hour it happened (``now`` only decides what is due)
    return report


def _claim(limit: int, now: dt.datetime | None) -> tuple[str, list[PendingLearn]]:
    now = now or timezone.now()
    due = list(
        PendingLearn.objects.filter(not_before__lte=now)
        .order_by("not_before", "message_id")
        .values_list("message_id", flat=True)[:limit]
    )
    if not due:
        return "", []
    token = secrets.token_hex(16)
    if not PendingLearn.objects.filter(message_id__in=due, not_before__lte=now).update(
        not_before=now + LEASE, claim=token
    ):
        return token, []
    return token, list(PendingLearn.objects.filter(message_id__in=due, claim=token).select_related("message"))


def _learn(client: rspamd.Client, row: PendingLearn, token: str, report: LearnReport, now) -> None:
    mine = PendingLearn.objects.filter(message_id=row.message_id, claim=token)
    message = row.message
    if not message.raw_path or message.owner_id != row.owner_id:
        mine.delete()  # deleted for good meanwhile: nothing to learn from
        return
    try:
        data = damage.read_checked(message.raw_path, message.sha256)  # never trained with damaged bytes
        new = client.learn(data, user=filtering.bayes_user(row.owner_id), spam=row.spam)
    except rspamd.Unavailable as exc:
        report.unavailable = str(exc)
        log.warning("spam: rspamd unavailable, training postponed: %s", exc)
        _postpone(row, token, report, now)
        return
    except (OSError, rspamd.Failed) as exc:
        report.failed += 1
        attempts = row.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            log.warning("spam: giving up training with message %s after %s tries: %s", message.id, attempts, exc)
            mine.delete()
        else:
            now = now or timezone.now()
            mine.update(not_before=now + retry_delay(attempts), claim="", attempts=attempts, error=str(exc)[:200])
        return
    mine.delete()
    if new:
        report.learned += 1
    else:
        report.known += 1


def _postpone(row: PendingLearn, token: str, report: LearnReport, now) -> None:
    now = now or timezone.now()
    PendingLearn.objects.filter(message_id=row.message_id, claim=token).update(
        not_before=now + UNAVAILABLE_RETRY, claim="", error=report.unavailable[:200]
    )
    report.postponed += 1
