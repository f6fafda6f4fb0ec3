"""The print view of a message, or of its whole conversation: a page of its own, without the app around it.

HTML mail is printed from the sanitized body the message frame shows
(``views_html.ensure_rendered``), inline in this page rather than in a sandboxed
frame: a frame prints cut off at its own height, one page at most. So the page has
a policy as strict as the frame's (``PRINT_CSP``): no script but webpop's own file,
nothing loaded from anywhere else (remote images stay blocked, whatever the reader
chose on screen; the message's own images come through signed URLs, as in the
frame), inline styles only as the sanitizer let them through, no forms (the page
holds no CSRF token either). With ``WEBPOP_SANITIZE_HTML`` off (a switch for tests
of the sandbox alone) mail HTML is never inlined: the text is printed.

The sanitizer scopes a message's ``<style>`` rules to one container
(``sanitize_css.CONTAINER_ID``); a conversation prints several messages on one page, so
each gets a container of its own and its rules are re-scoped to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from webpop.lib import cspolicy

from . import conversation, damage, mime, sanitize, sanitize_css, views_html
from .models import Attachment, Folder, Message

PRINT_POLICY = {
    "default-src": [cspolicy.NONE],
    "script-src": [cspolicy.SELF],
    "style-src": [cspolicy.SELF, "'unsafe-inline'"],
    "img-src": [cspolicy.SELF, "data:"],
    "font-src": [cspolicy.SELF],
    "connect-src": [cspolicy.NONE],
    "form-action": [cspolicy.NONE],
    "frame-ancestors": [cspolicy.NONE],
    "base-uri": [cspolicy.NONE],
}
PRINT_CSP = cspolicy.header(PRINT_POLICY)
# The style block the sanitizer puts first (its CSS never holds "<"), and the container its rules name.
_STYLE_BLOCK = re.compile(r"\A<style>([^<]*)</style>")
_CONTAINER = re.compile(rf"#{re.escape(sanitize_css.CONTAINER_ID)}(?![\w-])")


@dataclass
class Printed:
    message: Message
    container_id: str
    html: str = ""  # sanitized, its images resolved; empty: print ``text``
    text: str = ""
    has_html: bool = False  # printed from HTML unless the reader asked for plain text
    unreadable: bool = False
    attachments: list[Attachment] = field(default_factory=list)


def _scoped(html: str, container_id: str) -> str:
    match = _STYLE_BLOCK.match(html)
    if not match:
        return html
    return f"<style>{_CONTAINER.sub('#' + container_id, match.group(1))}</style>{html[match.end() :]}"


def _printed(request: HttpRequest, message: Message, *, text_only: bool) -> Printed:
    item = Printed(message=message, container_id=f"{sanitize_css.CONTAINER_ID}-{message.id}")
    try:
        with damage.open_checked(message.raw_path, message.sha256) as fh:
            parsed = mime.parse_file(fh)
    except (OSError, ValueError):
        item.unreadable = True
        item.attachments = list(message.attachments.all())
        return item
    item.text = parsed.text_body or re.sub(r"\n\s*\n(\s*\n)+", "\n\n", mime.html_to_text(parsed.html_body)).strip()
    item.has_html = bool(parsed.html_body) and settings.WEBPOP_SANITIZE_HTML
    shown_inline: set[int] = set()
    if item.has_html and not text_only:
        cached, meta = views_html.ensure_rendered(message, parsed.html_body)
        if meta.get("has_html"):
            token = views_html.asset_token(request.user.id, message.id, False)
            prefix = reverse("mailbox:cid_image", args=[message.id, token, 0])[:-2]
            rendered = sanitize.render(cached, meta, cid_url=lambda key: f"{prefix}{key}/", remote_url=None)
            item.html = _scoped(rendered, item.container_id)
            shown_inline = set(meta.get("cids") or [])
    item.attachments = [a for a in message.attachments.all() if a.id not in shown_inline]
    return item


def _response(request: HttpRequest, message: Message, messages: list[Message], *, conversation: bool) -> HttpResponse:
    text_only = request.GET.get("view") == "text"
    items = [_printed(request, m, text_only=text_only) for m in messages]
    in_thread = _thread(message).count() if message.thread_id else 1
    response = render(
        request,
        "mailbox/print.html",
        {
            "message": message,
            "items": items,
            "conversation": conversation,
            "in_thread": in_thread,
            "has_html": any(i.has_html for i in items),
            "text_only": text_only,
            "truncated": conversation and in_thread > len(items),
        },
    )
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def _own_message(request: HttpRequest, message_id: int) -> Message:
    return get_object_or_404(
        Message.objects.select_related("account").exclude(folder=Folder.PURGED), id=message_id, owner=request.user
    )


def _thread(message: Message):
    return Message.objects.filter(owner_id=message.owner_id, thread_id=message.thread_id).exclude(folder=Folder.PURGED)


@cspolicy.policy(PRINT_POLICY)
@login_required
@require_GET
def print_message(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _own_message(request, message_id)
    return _response(request, message, [message], conversation=False)


@cspolicy.policy(PRINT_POLICY)
@login_required
@require_GET
def print_conversation(request: HttpRequest, message_id: int) -> HttpResponse:
    """The conversation ``message_id`` is in, as its page shows it: the newest messages, oldest first."""
    message = _own_message(request, message_id)
    messages = conversation.load(message, defer=()).messages
    prefetch_related_objects(messages, "attachments")
    return _response(request, message, messages, conversation=True)
