"""Fixed-window rate limits: every limit of the site counts here, in the database.

For actions that make the server talk to hosts a user names (the account
form's connection test, autoconfig lookups) or send e-mail to an address a
visitor types (sign-up, verification, password reset): without a limit they
could be used to scan ports, guess passwords or flood an inbox. Each action is
counted per client (:func:`client_key`: an IPv4 address, an IPv6 /64) and, as
the action needs, per signed-in user and per target (e.g. the e-mail address).

A window is a fixed slice of time (``now // window``) and its count one row,
added to by a single UPDATE: concurrent requests are all counted, in order, so
exactly ``limit`` of them pass however many arrive at once. Rows, not the
cache: Django's file cache (the default without Redis) reads and writes
separately and culls entries when full, so it can neither count atomically nor
be trusted to keep a count. Login attempts are limited separately (django-axes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import math
import time

from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from webpop.models import RateCounter

from . import netaddr


def _counter_key(key: str, window: int, slot: int) -> str:
    # Hashed: keys hold addresses and user input, which the table need not keep in clear.
    return hashlib.sha256(f"{window}:{slot}:{key}".encode()).hexdigest()


def hit(key: str, limit: int, window: int) -> bool:
    """Count one attempt under ``key``; True while the current window holds at most ``limit`` of them."""
    slot = int(time.time() // window)
    counter = _counter_key(key, window, slot)
    rows = RateCounter.objects.filter(key=counter)
    with transaction.atomic():
        # The UPDATE locks the row until commit, so the count read below is this attempt's own.
        if not rows.update(count=F("count") + 1):
            expires = dt.datetime.fromtimestamp((slot + 1) * window, tz=dt.UTC)
            try:
                with transaction.atomic():
                    RateCounter.objects.create(key=counter, count=1, expires_at=expires)
            except IntegrityError:  # another first attempt of this window inserted it meanwhile
                rows.update(count=F("count") + 1)
        count = rows.values_list("count", flat=True).get()
    return count <= limit


def retry_after(window: int) -> int:
    """Seconds until the current window ends (at least 1)."""
    now = time.time()
    return max(1, math.ceil((now // window + 1) * window - now))


def client_key(request: HttpRequest) -> str:
    """Who the client is, for every limit: its address (see ``webpop.lib.netaddr``), an IPv6 one by its /64.

    One subscriber gets a whole /64 and can pick any address in it.
    """
    address = netaddr.client_ip(request)
    if address is None:  # e.g. a Unix socket without a proxy header: all such clients share one count
        return "unknown"
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def limit_request(
    request: HttpRequest,
    action: str,
    *,
    per_ip: int,
    per_user: int | None = None,
    target: str | None = None,
    per_target: int | None = None,
    window: int = 60,
) -> int | None:
    """Count ``request`` against the limits of ``action``: the client's, the user's, the target's.

    Each given limit counts the attempt (also one that another limit refuses). Returns None
    while all of them allow it, else the seconds to wait.
    """
    limits = {f"{action}:ip:{client_key(request)}": per_ip}
    if per_user is not None:
        limits[f"{action}:user:{request.user.pk}"] = per_user
    if target is not None and per_target is not None:
        limits[f"{action}:target:{target}"] = per_target
    allowed = [hit(key, limit, window) for key, limit in limits.items()]
    return None if all(allowed) else retry_after(window)


def prune(now: dt.datetime | None = None) -> int:
    """Delete the counters of windows that have ended; returns how many."""
    deleted, _by_model = RateCounter.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted
