import zoneinfo

from django.contrib.auth import get_user_model
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from .models import Profile


class FirstRunMiddleware:
    """Send every request to the first-run page while no user exists."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.has_users = False  # a cache only: once true it stays true

    def __call__(self, request):
        if not self.has_users:
            self.has_users = get_user_model().objects.exists()
            setup = reverse("first_run")
            public = request.path in (setup, "/healthz", "/readyz", "/metrics") or request.path.startswith("/static/")
            if not self.has_users and not public:
                return redirect(setup)
        return self.get_response(request)


class TimeZoneMiddleware:
    """Show dates in the signed-in user's time zone (Profile.time_zone), else the site's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = ""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            name = request.session.get("time_zone")
            if name is None:
                # One query per session, not per request; the list's preferences come along.
                row = (
                    Profile.objects.filter(user=user)
                    .values_list("time_zone", "conversations", "reading_pane", "time_zone_chosen", "inbox_tabs")
                    .first()
                )
                name, conversations, pane, chosen, inbox_tabs = row if row else ("", True, "off", False, False)
                request.session["time_zone"] = name
                # None chosen yet: the page asks the browser for its zone once (base.html, shell.js).
                request.session["time_zone_ask"] = not chosen
                request.session["conversations"] = conversations
                request.session["reading_pane"] = pane or "off"
                request.session["inbox_tabs"] = inbox_tabs
        if name:
            try:
                timezone.activate(zoneinfo.ZoneInfo(name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()  # the thread serves someone else next: nothing of this user's stays active
