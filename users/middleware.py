from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.shortcuts import redirect
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from webpop.lib.netaddr import client_ip

from . import audit, backends, twofactor
from .models import Session

LAST_SEEN_EVERY = dt.timedelta(minutes=5)  # "last active" needs no finer grain; each refresh is a write
_admin_paths: dict[str, str] = {}


def admin_path() -> str:
    """The admin site's URL, resolved once per script prefix rather than on every request."""
    prefix = get_script_prefix()
    path = _admin_paths.get(prefix)
    if path is None:
        path = _admin_paths[prefix] = reverse("admin:index")
    return path


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's session middleware; the session also records browser, address and last use."""

    def process_request(self, request):
        super().process_request(request)
        request.session.ip = client_ip(request)
        request.session.user_agent = request.META.get("HTTP_USER_AGENT", "")[:300]
        backends.current_session.set(request.session)  # the backend reads the user cached with it

    def process_response(self, request, response):
        backends.current_session.set(None)
        response = super().process_response(request, response)
        session = getattr(request, "session", None)
        row = getattr(session, "row", None)
        # An unmodified session is not written back: refresh "last seen" at most every LAST_SEEN_EVERY.
        if row is not None and row.user_id and not session.modified:
            now = timezone.now()
            if now - row.last_seen >= LAST_SEEN_EVERY:
                row.last_seen, row.ip, row.user_agent = now, session.ip or row.ip, session.user_agent or row.user_agent
                Session.objects.filter(session_key=row.session_key).update(
                    last_seen=now, ip=row.ip, user_agent=row.user_agent
                )
                session.recache()  # the cached copy carries last_seen: refreshed with the database
        return response


class AuditContextMiddleware:
    """Gives audit records written far from a view the request, and audits what the admin site changed."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = audit.current_request.set(request)
        admin_change = request.method == "POST" and request.path.startswith(admin_path())
        last_entry = audit.last_log_entry_id() if admin_change else 0
        try:
            response = self.get_response(request)
        finally:
            audit.current_request.reset(token)
        if admin_change:
            audit.record_admin_actions(request, after=last_entry)
        return response


class AdminTwoFactorMiddleware:
    """The admin site asks for the second factor when its user has one and this session did not give it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            request.path.startswith(admin_path())
            and user is not None
            and user.is_authenticated
            and not user.is_verified()
            and twofactor.has_device(user)
        ):
            return redirect(f"{reverse('login_otp')}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
