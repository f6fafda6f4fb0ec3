"""Notifications: browsers subscribe and unsubscribe, the user's choice, and the installable web app's files."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from users.sessions import key_hash

from . import actions
from .models import Content

SERVICE_WORKER = Path(__file__).resolve().parent / "sw.js"
# The app shell the service worker keeps for offline use: our own CSS, scripts and icons, never mail.
SHELL = ("css/app.css", "js/theme.js", "js/push.js", "img/icon.svg", "img/icon-192.png")


class SubscriptionForm(forms.Form):
    """A browser's PushSubscription (its JSON's endpoint and keys) and the server key it was made with."""

    endpoint = forms.CharField(max_length=2048)
    p256dh = forms.CharField(max_length=100)
    auth = forms.CharField(max_length=50)
    key = forms.CharField(max_length=100)


class ContentForm(forms.Form):
    content = forms.ChoiceField(choices=Content.choices, widget=forms.RadioSelect, label=_("A notification shows"))


def _error(status: int, error: str) -> JsonResponse:
    return JsonResponse({"error": error, "key": _server_key()}, status=status)


def _server_key() -> str | None:
    return settings.WEBPOP_VAPID_PUBLIC_KEY if actions.push_enabled() else None


@login_required
@require_POST
def subscribe(request: HttpRequest) -> JsonResponse:
    """Keep this browser's subscription (new, or the same again after signing in).

    409 when it was made with another server key (the page subscribes again with ``key``);
    404 when push is off here (``key`` is null).
    """
    if not actions.push_enabled():
        return _error(404, "Web Push is not set up on this server.")
    form = SubscriptionForm(request.POST)
    if not form.is_valid():
        return _error(400, "Not a push subscription.")
    data = form.cleaned_data
    if data["key"] != _server_key():
        return _error(409, "The subscription was made with another server key.")
    browser = actions.BrowserSubscription(data["endpoint"], data["p256dh"], data["auth"], data["key"])
    try:
        actions.subscribe(
            request.user,
            key_hash(request.session.session_key or ""),
            browser,
            language=get_language() or "",
            user_agent=request.headers.get("User-Agent", ""),
        )
    except actions.SubscriptionError as exc:
        return _error(400, str(exc))
    return JsonResponse({"subscribed": True, "key": _server_key()})


@login_required
@require_POST
def unsubscribe(request: HttpRequest) -> JsonResponse:
    """This browser turned notifications off."""
    removed = actions.unsubscribe(request.user.id, request.POST.get("endpoint", ""))
    return JsonResponse({"removed": removed})


@login_required
@require_POST
def remove(request: HttpRequest, subscription_id: int) -> HttpResponse:
    """Stop notifying one of the user's browsers (the list on the Preferences page)."""
    if not actions.remove(request.user.id, subscription_id):
        raise Http404  # not the user's (or gone already)
    messages.success(request, gettext("That browser will not be notified any more."))
    return redirect(reverse("accounts:preferences") + "#notifications")


@login_required
@require_POST
def content(request: HttpRequest) -> HttpResponse:
    form = ContentForm(request.POST)
    if form.is_valid():
        actions.set_content(request.user.id, form.cleaned_data["content"])
        messages.success(request, gettext("Notification settings saved."))
    return redirect(reverse("accounts:preferences") + "#notifications")


@cache
def _worker_source() -> str:
    return SERVICE_WORKER.read_text()


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """The service worker, at the site's root so that its scope is the whole site.

    Its settings (what to keep for offline use, the icon) come first, as JSON values.
    """
    config = {
        "SHELL": [static(path) for path in SHELL] + [reverse("push:offline")],
        "OFFLINE_URL": reverse("push:offline"),
        "ICON": static("img/icon-192.png"),
    }
    head = "".join(f"const {name} = {json.dumps(value)};\n" for name, value in config.items())
    source = _worker_source()
    version = hashlib.sha256((head + source).encode()).hexdigest()[:12]
    body = f"// webpop service worker\n{head}const CACHE = {json.dumps('webpop-shell-' + version)};\n{source}"
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def manifest(request: HttpRequest) -> JsonResponse:
    """The web app manifest: what an installed webpop is called, its icons, where it starts."""
    icon, maskable = static("img/icon-512.png"), static("img/icon-maskable-512.png")
    data = {
        "id": "/",
        "name": "webpop",
        "short_name": "webpop",
        "description": gettext("Your POP3 mail on the web, with notifications of new mail."),
        "lang": get_language(),
        "start_url": reverse("mailbox:inbox"),
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#2457c5",
        "icons": [
            {"src": static("img/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": icon, "sizes": "512x512", "type": "image/png"},
            {"src": maskable, "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
            {"src": static("img/icon.svg"), "sizes": "any", "type": "image/svg+xml"},
        ],
        "shortcuts": [{"name": gettext("Compose"), "url": reverse("outgoing:compose")}],
    }
    response = JsonResponse(data, content_type="application/manifest+json", json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def offline(request: HttpRequest) -> HttpResponse:
    """What the installed app shows without a network: kept by the service worker, holds no mail."""
    return render(request, "push/offline.html")
