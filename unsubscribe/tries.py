"""A one-click unsubscribe request, in a worker: one try, and beat's look for tries that are due.

The work unsubscribe/tasks.py runs; unsubscribe/actions.py records the reader's request and
publishes the task. Nothing here publishes a task, so the arrows go one way.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from webpop.lib import pagecache

from . import oneclick
from .models import UnsubscribeRequest

log = logging.getLogger("unsubscribe.actions")  # the name its log lines always had

Method = UnsubscribeRequest.Method
State = UnsubscribeRequest.State

MAX_ATTEMPTS = 3
RETRY_AFTER = (dt.timedelta(minutes=1), dt.timedelta(minutes=5))  # after the first and the second try
# A worker that died during a request leaves its claim; after this long the sweep hands the row on.
CLAIM_LEASE = dt.timedelta(minutes=5)
# A task published for a due row that has not started after this long counts as lost.
REDISPATCH_AFTER = dt.timedelta(minutes=5)


def _claim(request_id: int) -> bool:
    """Take the request with a conditional UPDATE: exactly one caller wins, and only once it is due."""
    now = timezone.now()
    claimable = Q(state=State.PENDING, not_before__lte=now) | Q(state=State.RUNNING, claimed_at__lt=now - CLAIM_LEASE)
    return bool(
        UnsubscribeRequest.objects.filter(
            claimable, id=request_id, method=Method.ONE_CLICK, attempts__lt=MAX_ATTEMPTS
        ).update(state=State.RUNNING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now)
    )


def run(request_id: int) -> str:
    """One try of a one-click request; returns what became of it (for the task's log)."""
    if not _claim(request_id):
        return "skipped"
    request = UnsubscribeRequest.objects.get(id=request_id)
    result = oneclick.post(request.target)
    log.info("unsubscribe request=%s outcome=%s status=%s", request.id, result.outcome.value, result.status)
    now = timezone.now()
    fields = {"status_code": result.status, "error": result.detail[:2000], "claimed_at": None, "updated_at": now}
    if result.outcome is oneclick.Outcome.OK:
        fields.update(state=State.DONE, error_class="", finished_at=now)
    elif result.outcome is oneclick.Outcome.TEMPORARY and request.attempts < MAX_ATTEMPTS:
        wait = RETRY_AFTER[min(request.attempts, len(RETRY_AFTER)) - 1]
        fields.update(state=State.PENDING, error_class="temporary", not_before=now + wait)
    else:
        fields.update(state=State.FAILED, error_class=result.outcome.value, finished_at=now)
    if UnsubscribeRequest.objects.filter(id=request.id, state=State.RUNNING).update(**fields):
        pagecache.touch_message_pages([request.owner_id])  # the conversation page shows how it ended
    return fields["state"]


@transaction.atomic
def due(now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """The ids of one-click requests to publish a task for now, each claimed for that with a conditional UPDATE.

    Workers that died during a request leave it running: after ``CLAIM_LEASE`` it is
    tried again (or failed, out of tries). A task published for a due try that has not
    started after ``REDISPATCH_AFTER`` is published again; should both run, one wins the claim.
    """
    now = now or timezone.now()
    rows = UnsubscribeRequest.objects.filter(method=Method.ONE_CLICK)
    dead = Q(state=State.RUNNING, claimed_at__lt=now - CLAIM_LEASE)
    # Read first (as the update would, so an idle tick costs no more): their owners' conversation pages show it.
    stopped = list(rows.filter(dead, attempts__gte=MAX_ATTEMPTS).values_list("id", "owner_id"))
    if stopped:
        rows.filter(dead, attempts__gte=MAX_ATTEMPTS, id__in=[pk for pk, _owner in stopped]).update(
            state=State.FAILED, error_class="stopped", claimed_at=None, finished_at=now, updated_at=now
        )
        pagecache.touch_message_pages({owner_id for _pk, owner_id in stopped})
    # Running again (pending): the page shows "Unsubscribing…" for both, so nothing it shows changes.
    rows.filter(dead).update(state=State.PENDING, claimed_at=None, not_before=now, updated_at=now)
    not_on_its_way = (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=F("not_before")) | Q(enqueued_at__lt=now - REDISPATCH_AFTER)
    )
    ready = Q(state=State.PENDING, not_before__lte=now) & not_on_its_way
    candidates = list(rows.filter(ready).order_by("not_before").values_list("id", flat=True)[:limit])
    return [request_id for request_id in candidates if rows.filter(ready, id=request_id).update(enqueued_at=now) == 1]
