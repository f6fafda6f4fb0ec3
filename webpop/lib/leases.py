"""Who holds a lease on background work (a sync, an import): this worker process, and whether a holder died."""

from __future__ import annotations

import os
import socket

from django.db.models import Q


def worker_id() -> str:
    """``host:pid`` of this process (computed each time: Celery's prefork children have their own pids)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_is_dead(owner: str) -> bool:
    """True only when the lease holder ran on this host and its process is gone."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def take_job(rows, lease: dict, *, queued: str, running: str, now) -> str | None:
    """Take a job's lease with conditional UPDATEs (``rows``: the one job, while it may still run).

    A queued job, or a running one whose lease lapsed, is taken at once; one whose holder is a worker
    that is gone (``holder_is_dead``) is taken over. Returns "claimed", "taken over", or None when
    someone else holds it or it is finished.
    """
    if rows.filter(Q(state=queued) | Q(state=running, lease_until__lt=now)).update(**lease) == 1:
        return "claimed"
    held = rows.filter(state=running).values_list("lease_token", "claimed_by").first()
    taken = bool(held and held[0] and holder_is_dead(held[1]))
    if taken and rows.filter(state=running, lease_token=held[0]).update(**lease) == 1:
        return "taken over"
    return None
