"""The account's sync lease (docs/design.md, invariant 4), and claiming the accounts whose poll is due."""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import MailAccount
from webpop.lib import leases

log = logging.getLogger(__name__)

WORKER = f"{socket.gethostname()}:{os.getpid()}"


class LeaseLost(Exception):
    """Another worker took over this account's lease: stop without committing DELEs."""


worker_id = leases.worker_id
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
        "sync_lease_owner": worker_id(),
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


# A claimed account's next poll is pushed WEBPOP_POLL_CLAIM_SECONDS forward: the check or sync sets the real
# one when it ends, so only an account whose task was lost (a broker restart, a killed worker) waits this long.
def claim_hold() -> dt.timedelta:
    return dt.timedelta(seconds=settings.WEBPOP_POLL_CLAIM_SECONDS)


def claim_due_accounts(now: dt.datetime | None = None, limit: int = 1000) -> list[int]:
    """Claim up to ``limit`` accounts whose poll is due by pushing next_poll_at forward, in two statements.

    The due rows are locked (SKIP LOCKED: another beat's claim in progress is passed over) and moved
    together; the count is checked, so two beats, or a beat racing "check now", never both enqueue an
    account for the same slot. Disabled accounts and users are not polled.
    """
    now = now or timezone.now()
    hold_until = now + claim_hold()
    with transaction.atomic():
        due = list(
            MailAccount.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(enabled=True, next_poll_at__lte=now, owner__is_active=True)
            .order_by("next_poll_at")
            .values_list("id", flat=True)[:limit]
        )
        if not due:
            return []
        claimed = MailAccount.objects.filter(id__in=due, next_poll_at__lte=now).update(next_poll_at=hold_until)
        if claimed != len(due):  # a database without row locks, and a claim in between: keep what is ours
            ours = MailAccount.objects.filter(id__in=due, next_poll_at=hold_until)
            return list(ours.values_list("id", flat=True))
    return due
