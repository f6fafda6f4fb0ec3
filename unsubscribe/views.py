"""The unsubscribe confirmation page (GET shows it, POST with CSRF confirms) and its status for polling."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from mailbox.models import Folder, Message
from outgoing import send
from webpop.lib import ratelimit

from . import actions
from .models import UnsubscribeRequest


def _own_message(request: HttpRequest, message_id: int) -> Message:
    return get_object_or_404(
        Message.objects.select_related("account").exclude(folder=Folder.PURGED), id=message_id, owner=request.user
    )


def _request_of(message: Message) -> UnsubscribeRequest | None:
    return UnsubscribeRequest.objects.select_related("outgoing").filter(message=message).first()


@login_required
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _own_message(request, message_id)
    offered = actions.offer(message)
    if not offered:
        raise Http404
    error, wait = "", None
    if request.method == "POST":
        wait = _wait(request)
        try:
            if wait:
                raise actions.Refused(
                    _("Too many unsubscribe requests in a short time; try again in %(minutes)d minutes.")
                    % {"minutes": -(-wait // 60)}
                )
            actions.start(request.user, message.id, request.POST.get("method", ""))
        except Message.DoesNotExist:
            raise Http404 from None
        except actions.Refused as exc:
            error = str(exc)
        else:
            return redirect("unsubscribe:confirm", message.id)
    existing = _request_of(message)
    status = actions.status(existing) if existing else None
    can_send = actions.can_send(message)
    context = {
        "message": message,
        "name": offered.list_name or message.from_name or message.from_email,
        "offered": offered,
        "status": status,
        "error": error,
        "can_send": can_send,
        "compose_url": _compose_url(request, message, offered) if offered.mailto else "",
        "https_host": offered.https.split("/")[2] if offered.https else "",
        "ways": _ways(offered),
    }
    response = render(request, "unsubscribe/confirm.html", context, status=429 if wait else 400 if error else 200)
    if wait:
        response["Retry-After"] = str(wait)
    return response


def _wait(request: HttpRequest) -> int | None:
    """Seconds to wait before the next request, or None: any message (an imported one too) can name any
    host, and the server must not become a tool for sending many requests."""
    limit = settings.WEBPOP_RATELIMIT_UNSUBSCRIBE
    return ratelimit.limit_request(request, "unsubscribe", per_user=limit, per_ip=3 * limit, window=3600)


def _ways(offered) -> list[str]:
    """The ways the message offers, best first: one-click asks nothing more of the reader."""
    ways = [("one_click", offered.one_click), ("mailto", offered.mailto is not None), ("web", bool(offered.https))]
    return [way for way, available in ways if available]


def _compose_url(request: HttpRequest, message: Message, offered) -> str:
    """The compose page with the list's e-mail filled in, from an account that can send (if any can)."""
    accounts = send.sendable_accounts(request.user)
    if not accounts:
        return ""
    account = next((a for a in accounts if a.id == message.account_id), accounts[0])
    mailto = offered.mailto
    query = {"account": account.id, "to": mailto.address, "subject": mailto.subject, "body": mailto.body}
    return f"{reverse('outgoing:compose')}?{urlencode(query)}"


@login_required
@require_GET
def status(request: HttpRequest, message_id: int) -> JsonResponse:
    message = _own_message(request, message_id)
    existing = _request_of(message)
    shown = actions.status(existing) if existing else None
    return JsonResponse({"kind": shown.kind if shown else "none"})
