"""The client's address, trusting X-Forwarded-For only as far as WEBPOP_PROXY_HOPS says."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid(value: str) -> str | None:
    try:  # without an IPv6 zone ("%eth0"): the database's address type refuses one
        return str(ipaddress.ip_address(value.strip().split("%", 1)[0]))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    count = settings.WEBPOP_PROXY_HOPS
    if count:
        hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        # Each trusted proxy appends the address it saw: the client is `count` entries from the right.
        if len(hops) >= count:
            return _valid(hops[-count])
    return _valid(request.META.get("REMOTE_ADDR", ""))
