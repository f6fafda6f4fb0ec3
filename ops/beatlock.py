"""Exactly one Celery beat enqueues periodic tasks: a lease in the shared database.

Each beat tries to take or renew the lease before every tick with one
conditional UPDATE (``holder = me OR expired``). The holder renews it well
before it lapses; a second beat stays on standby and takes over when the
holder stops (it releases the lease) or dies (the lease lapses after its TTL).
A database lease works with either broker (Redis or the local folder queue).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .models import SchedulerLease

log = logging.getLogger(__name__)

BEAT_LEASE = "celery-beat"


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def hold(holder: str, ttl: float, *, name: str = BEAT_LEASE, now=None) -> bool:
    """Take or renew the lease for ``ttl`` seconds; False while someone else holds it."""
    now = now or timezone.now()
    expires = now + dt.timedelta(seconds=ttl)
    mine_or_free = Q(holder=holder) | Q(expires_at__lt=now) | Q(holder="")
    if SchedulerLease.objects.filter(mine_or_free, name=name).update(holder=holder, expires_at=expires):
        return True
    if SchedulerLease.objects.filter(name=name).exists():
        return False
    try:
        with transaction.atomic():
            SchedulerLease.objects.create(name=name, holder=holder, expires_at=expires)
    except IntegrityError:  # another beat created it first
        return False
    return True


def release(holder: str, *, name: str = BEAT_LEASE) -> None:
    SchedulerLease.objects.filter(name=name, holder=holder).update(holder="", expires_at=timezone.now())


def current_holder(*, name: str = BEAT_LEASE, now=None) -> str | None:
    now = now or timezone.now()
    row = SchedulerLease.objects.filter(name=name, expires_at__gte=now).exclude(holder="").first()
    return row.holder if row else None
