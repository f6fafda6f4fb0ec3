from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.shortcuts import redirect
from django.urls import get_script_prefix, reverse

from webpop.lib.netaddr import client_ip

from . import audit, twofactor

_admin_paths: dict[str, str] = {}


def admin_path() -> str:
    """The admin site's URL, resolved once per script prefix rather than on every request."""
    prefix = get_script_prefix()
    path = _admin_paths.get(prefix)
    if path is None:
        path = _admin_paths[prefix] = reverse("admin:index")
    return path


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's session middleware; the session also records browser and address (users.sessions)."""

    def process_request(self, request):
        super().process_request(request)
        request.session.ip = client_ip(request)
        request.session.user_agent = request.META.get("HTTP_USER_AGENT", "")[:300]


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
