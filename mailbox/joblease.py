"""The lease of a background job (a :class:`~mailbox.models.BackgroundJob`: an import, a bulk job).

One worker at a time runs a job. It takes the lease with a conditional UPDATE (``claim``),
renews it while it works (``renew``, which also commits progress and fails once another
worker holds the job), and gives it back when the job ends (``release``). A beat sweep
(``stalled``) finds jobs whose task was lost or whose worker stopped (invariant 8): those
still allowed another try are enqueued again, those stopped too often fail.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable

from django.db.models import F, Q
from django.utils import timezone

from webpop.lib import leases

from .models import BackgroundJob

log = logging.getLogger(__name__)

Job = type[BackgroundJob]
CLEARED = {"lease_token": "", "lease_until": None, "claimed_by": ""}


def claim(
    model: Job,
    job_id: int,
    *,
    lease_seconds: int,
    max_attempts: int,
    label: str,
    now: dt.datetime | None = None,
    **extra,
) -> str | None:
    """Take the job's lease; its token, or None when it is held, finished or used up.

    ``extra``: more fields the claim sets (e.g. when the job started).
    """
    now = now or timezone.now()
    token = secrets.token_hex(16)
    lease = {
        "state": model.State.RUNNING,
        "lease_token": token,
        "claimed_by": leases.worker_id(),
        "lease_until": now + dt.timedelta(seconds=lease_seconds),
        "attempts": F("attempts") + 1,
        "updated_at": now,
        **extra,
    }
    rows = model.objects.filter(id=job_id, attempts__lt=max_attempts)
    taken = leases.take_job(rows, lease, queued=model.State.QUEUED, running=model.State.RUNNING, now=now)
    if taken == "taken over":
        log.warning("took over %s %s from a dead worker", label, job_id)
    return token if taken else None


def renew(model: Job, job_id: int, token: str, *, lease_seconds: int, **fields) -> bool:
    """Extend the lease (and save ``fields`` with it) while ``token`` still holds it; False once it does not."""
    now = timezone.now()
    until = now + dt.timedelta(seconds=lease_seconds)
    return model.objects.filter(id=job_id, lease_token=token).update(lease_until=until, updated_at=now, **fields) == 1


def release(model: Job, job_id: int, token: str, state: str, **fields) -> bool:
    """End the job in ``state`` and free its lease, if ``token`` still holds it; False when it did not."""
    now = timezone.now()
    rows = model.objects.filter(id=job_id, lease_token=token)
    return rows.update(state=state, finished_at=now, updated_at=now, **CLEARED, **fields) == 1


def stalled(
    model: Job,
    *,
    max_attempts: int,
    stale_queued: dt.timedelta,
    label: str,
    failed: dict,
    on_failed: Callable[[BackgroundJob], None],
    now: dt.datetime | None = None,
) -> list[int]:
    """The beat sweep: ids of jobs whose task was lost or whose worker stopped, to enqueue again.

    Those stopped ``max_attempts`` times end FAILED with ``failed`` (fields such as the error),
    and ``on_failed`` runs for each. Running a job twice is prevented by the claim, so enqueueing
    one that in fact still waits (behind others) is harmless.
    """
    now = now or timezone.now()
    State = model.State
    lapsed = Q(state=State.QUEUED, updated_at__lt=now - stale_queued) | Q(state=State.RUNNING, lease_until__lt=now)
    running = model.objects.filter(state=State.RUNNING, lease_until__gte=now)
    dead = [pk for pk, holder in running.values_list("id", "claimed_by") if leases.holder_is_dead(holder)]
    rows = model.objects.filter(lapsed | Q(id__in=dead))
    for job in rows.filter(attempts__gte=max_attempts):
        # Only if no worker claimed it meanwhile (same token, still active).
        ended = model.objects.filter(id=job.id, state__in=model.ACTIVE, lease_token=job.lease_token).update(
            state=State.FAILED, finished_at=now, updated_at=now, **CLEARED, **failed
        )
        if ended == 1:
            log.warning("%s %s stopped %s times: failed", label, job.id, job.attempts)
            on_failed(job)
    ids = list(rows.filter(attempts__lt=max_attempts).values_list("id", flat=True)[:100])
    model.objects.filter(id__in=ids, state=State.QUEUED).update(updated_at=now)  # not again on the next tick
    return ids
