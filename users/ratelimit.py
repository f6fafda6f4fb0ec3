"""Limits on what anonymous visitors can make the site do, e.g. send e-mail to any address.

Counted in the audit log (each allowed attempt is an event there anyway), per client address.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from webpop.netaddr import client_ip

from . import audit
from .models import AuditEvent

EMAIL = "email.requested"


def allow_email(request: HttpRequest, kind: str) -> bool:
    """True (and counted) while this address asked for fewer than WEBPOP_EMAIL_RATE_PER_HOUR e-mails."""
    since = timezone.now() - dt.timedelta(hours=1)
    ip = client_ip(request)
    if AuditEvent.objects.filter(action=EMAIL, ip=ip, time__gte=since).count() >= settings.WEBPOP_EMAIL_RATE_PER_HOUR:
        return False
    audit.record(request, EMAIL, kind)
    return True


def refused(request: HttpRequest) -> HttpResponse:
    return render(request, "users/rate_limited.html", status=429)
