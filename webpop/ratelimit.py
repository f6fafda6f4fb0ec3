"""Fixed-window rate limits in the Django cache (Redis when REDIS_URL is set).

For actions that make the server talk to hosts a user names (the account
form's connection test, autoconfig lookups, sending mail): without a limit one
account could use them to scan ports, guess POP3 passwords or flood a domain.
Each action is counted per user and per client address; a window is a fixed
slice of time (``now // window``), so a counter is one cache key that expires
with its window. Login attempts are limited separately (django-axes).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time

from django.core.cache import cache
from django.http import HttpRequest

from . import netaddr

KEY_PREFIX = "ratelimit"


def _cache_key(key: str, window: int, now: float) -> str:
    # Hashed: keys may hold IPv6 addresses or user input; cache backends differ in what they allow.
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}:{window}:{int(now // window)}:{digest}"


def hit(key: str, limit: int, window: int) -> bool:
    """Count one attempt under ``key``; True while the current window holds at most ``limit`` of them."""
    cache_key = _cache_key(key, window, time.time())
    # add() then incr(): both atomic on Redis, so concurrent workers never lose a count.
    if cache.add(cache_key, 1, timeout=window + 1):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # the window's key expired between add() and incr()
            cache.add(cache_key, 1, timeout=window + 1)
            count = 1
    return count <= limit


def retry_after(window: int) -> int:
    """Seconds until the current window ends (at least 1)."""
    now = time.time()
    return max(1, math.ceil((now // window + 1) * window - now))


def client_ip(request: HttpRequest) -> str:
    """The client's address as rate limits count it: IPv6 by its /64 (see ``webpop.netaddr``)."""
    return _client_network(netaddr.client_ip(request) or request.META.get("REMOTE_ADDR", ""))


def _client_network(address: str) -> str:
    """IPv6 clients by their /64: one subscriber gets a whole /64 and can pick any address in it."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def limit_request(request: HttpRequest, action: str, *, per_user: int, per_ip: int, window: int = 60) -> int | None:
    """Count ``request`` against the user's and the client address's limits for ``action``.

    Returns None while both allow it, else the seconds to wait.
    """
    user_ok = hit(f"{action}:user:{request.user.pk}", per_user, window)
    ip_ok = hit(f"{action}:ip:{client_ip(request)}", per_ip, window)
    return None if user_ok and ip_ok else retry_after(window)
