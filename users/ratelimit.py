"""The limit on e-mails anonymous visitors can make the site send (sign-up, verification, reset).

Counted by webpop/lib/ratelimit.py, per client (IPv6: its /64) and per e-mail address, each at most
WEBPOP_EMAIL_RATE_PER_HOUR an hour: many addresses of one network cannot flood one inbox or many,
and many networks cannot flood one inbox. Unknown addresses count too, so the answer never tells
whether an address has an account.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from webpop.lib import ratelimit

from . import audit

EMAIL = "email.requested"
HOUR = 3600


def mailbox_key(address: str) -> str:
    """The inbox an address reaches, as far as the limit cares: case and a "+tag" do not make another."""
    local, at, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}{at}{domain}" if at else domain


def email_wait(request: HttpRequest, kind: str, address: str) -> int | None:
    """None (and counted, and audited) while an e-mail to ``address`` may be sent, else seconds to wait."""
    limit = settings.WEBPOP_EMAIL_RATE_PER_HOUR
    wait = ratelimit.limit_request(
        request, "email", per_ip=limit, target=mailbox_key(address), per_target=limit, window=HOUR
    )
    if wait is None:
        audit.record(request, EMAIL, kind)
    return wait


def refused(request: HttpRequest, wait: int) -> HttpResponse:
    response = render(request, "users/rate_limited.html", status=429)
    response["Retry-After"] = str(wait)
    return response
