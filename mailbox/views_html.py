"""HTML mail in the web UI: the sanitized body document, its images, remote-image choices.

The message page (``views.message_detail``) embeds the body from its own URL in
``<iframe sandbox="allow-popups allow-popups-to-escape-sandbox">``: no
``allow-scripts`` and no ``allow-same-origin``, so the frame has an opaque
origin. The body URL itself answers with a strict Content-Security-Policy
(which also sandboxes it when opened on its own), ``nosniff``, no Referer and
``frame-ancestors 'self'``. It fits its content with CSS alone
(``frame-sizing: content-height`` on the iframe, ``responsive-embedded-sizing``
in the body document); browsers without that get a resizable, scrolling frame.

What the frame loads itself (``cid:`` images, proxied remote images) comes
from the opaque origin, which carries no session cookie. Those go through
short-lived signed URLs (``django.core.signing``, ``WEBPOP_HTML_ASSET_MAX_AGE``)
bound to the user and the message (and, for the proxy, to the reader having
allowed remote images), never through unauthenticated ones. Signed URLs rather
than inline ``data:`` URIs: the cached body stays small and shared by every
view, the browser caches images, and a big image never bloats the page.

Sanitizing happens on first view (never at ingest) and is cached on the message
with the sanitizer's version (``ensure_rendered``).
"""

from __future__ import annotations

import html as html_lib
import logging
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import imageproxy, mime, sanitize, store
from .models import Attachment, Message, RemoteImagePreference

logger = logging.getLogger(__name__)

ASSET_SALT = "webpop.mailbox.html-asset"
IFRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
FRAME_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; font-src 'self'; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'; "
    f"sandbox {IFRAME_SANDBOX}"
)
ASSET_CSP = "default-src 'none'; sandbox"
MAX_INLINE_IMAGE_BYTES = 25 * 1024 * 1024

# The frame's own document around the sanitized body. Mail is designed for a light
# background: the frame stays light (its own color-scheme) whatever the app's theme.
FRAME_HEAD = """<!doctype html>
<html><head><meta charset="utf-8">
<meta name="responsive-embedded-sizing" content="allow-origins=*">
<meta name="color-scheme" content="light">
<meta name="referrer" content="no-referrer">
<title>Message</title>
<style>
html { background: #fff; color: #1c1e21; color-scheme: light; }
body { margin: 0; padding: 16px; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; overflow-wrap: break-word; }
#webpop-message { overflow-x: auto; }
#webpop-message pre { white-space: pre-wrap; }
#webpop-message img[data-webpop-blocked] { outline: 1px dashed #b0b4ba; background: #f3f4f6; color: #5f6670; }
</style></head><body><div id="webpop-message">"""
FRAME_TAIL = "</div></body></html>\n"


# --- Rendering ----------------------------------------------------------------------------


def _parse(message: Message) -> mime.ParsedMessage:
    with store.open_file(message.raw_path) as fh:
        return mime.parse_file(fh)


def ensure_rendered(message: Message, html_body: str | None = None) -> tuple[str, dict]:
    """The cached sanitized body and its meta, sanitizing (and saving) it first when stale.

    ``html_body`` saves reading the stored message again when the caller has it.
    Raises OSError when the stored message cannot be read.
    """
    if message.html_cache_version == sanitize.VERSION and message.html_cache_meta:
        return message.html_cache, message.html_cache_meta
    if html_body is None:
        html_body = _parse(message).html_body
    content_ids = {a.content_id: a.id for a in message.attachments.all() if a.content_id}
    if html_body:
        try:
            result = sanitize.sanitize(html_body, content_ids)
            cached, meta = result.html, result.meta()
        except Exception:  # a sanitizer bug must not take the message down: show its text
            logger.exception("sanitizing message %s failed; showing its text", message.id)
            text = html_lib.escape(mime.html_to_text(html_body).strip())
            cached, meta = f"<pre>{text}</pre>", {"nonce": "", "remote": [], "cids": [], "trackers_removed": 0}
            meta["truncated"] = True
    else:
        cached, meta = "", {"nonce": "", "remote": [], "cids": [], "trackers_removed": 0}
    meta["has_html"] = bool(html_body)
    Message.objects.filter(id=message.id).update(
        html_cache=cached, html_cache_version=sanitize.VERSION, html_cache_meta=meta
    )
    message.html_cache, message.html_cache_version, message.html_cache_meta = cached, sanitize.VERSION, meta
    return cached, meta


def remote_images(request: HttpRequest, message: Message, meta: dict) -> dict:
    """Whether this view loads the message's remote images, and why."""
    count = len(meta.get("remote") or [])
    sender = (message.from_email or "").strip().lower()
    reason = None
    if count:
        chosen = set(
            RemoteImagePreference.objects.filter(owner=request.user, sender__in=["", sender]).values_list(
                "sender", flat=True
            )
        )
        if "" in chosen:
            reason = "everyone"
        elif sender and sender in chosen:
            reason = "sender"
        elif request.GET.get("images") == "1":
            reason = "once"
    return {
        "count": count,
        "allowed": reason is not None,
        "reason": reason,
        "sender": sender,
        "trackers": meta.get("trackers_removed", 0),
    }


def asset_token(user_id: int, message_id: int, remote: bool) -> str:
    return signing.dumps([user_id, message_id, int(remote)], salt=ASSET_SALT)


def _check_token(token: str, message_id: int) -> tuple[int, bool]:
    try:
        user_id, signed_message_id, remote = signing.loads(
            token, salt=ASSET_SALT, max_age=settings.WEBPOP_HTML_ASSET_MAX_AGE
        )
    except (signing.BadSignature, ValueError, TypeError):
        raise PermissionDenied from None
    if signed_message_id != message_id:
        raise PermissionDenied
    return int(user_id), bool(remote)


def render_body(request: HttpRequest, message: Message, cached: str, meta: dict) -> str:
    allowed = remote_images(request, message, meta)["allowed"]
    token = asset_token(request.user.id, message.id, allowed)
    cid_prefix = reverse("mailbox:cid_image", args=[message.id, token, 0])[:-2]
    remote_prefix = reverse("mailbox:proxied_image", args=[message.id, token, 0])[:-2]
    return sanitize.render(
        cached,
        meta,
        cid_url=lambda key: f"{cid_prefix}{key}/",
        remote_url=(lambda index: f"{remote_prefix}{index}/") if allowed else None,
    )


def message_context(request: HttpRequest, message: Message, parsed: mime.ParsedMessage | None) -> dict:
    """What templates/mailbox/message.html needs to show the body (HTML frame or plain text)."""
    html_body = parsed.html_body if parsed else ""
    text = parsed.text_body if parsed else ""
    if not text and html_body:
        text = re.sub(r"\n\s*\n(\s*\n)+", "\n\n", mime.html_to_text(html_body)).strip()
    has_html = bool(html_body)
    context = {
        "has_html": has_html,
        "view": "html" if has_html and request.GET.get("view") != "text" else "text",
        "text_body": text,
        "iframe_sandbox": IFRAME_SANDBOX,
    }
    if has_html:
        _cached, meta = ensure_rendered(message, html_body)
        remote = remote_images(request, message, meta)
        frame_url = reverse("mailbox:message_body", args=[message.id])
        if remote["reason"] == "once":
            frame_url += "?images=1"
        cids = set(meta.get("cids") or [])
        context.update(
            remote=remote,
            frame_url=frame_url,
            inline_cids=cids,
            html_truncated=bool(meta.get("truncated")),
        )
    # Parts shown inside the HTML (cid: images) are not listed again as attachments.
    inline = context.get("inline_cids", set()) if context["view"] == "html" else set()
    context["shown_attachments"] = [a for a in message.attachments.all() if a.id not in inline]
    return context


def _frame_response(body: str) -> HttpResponse:
    response = HttpResponse(FRAME_HEAD + body + FRAME_TAIL, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = FRAME_CSP
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def _image_response(data: bytes, content_type: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = "inline"
    response["Content-Security-Policy"] = ASSET_CSP
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = f"private, max-age={settings.WEBPOP_HTML_ASSET_MAX_AGE}"
    return response


# --- Views ---------------------------------------------------------------------------------


def _own_message(request: HttpRequest, message_id: int) -> Message:
    return get_object_or_404(Message, id=message_id, owner=request.user)


@login_required
@require_GET
@xframe_options_sameorigin
def message_body(request: HttpRequest, message_id: int) -> HttpResponse:
    """The message's HTML as its own document, for the sandboxed frame on the message page."""
    message = _own_message(request, message_id)
    try:
        if not settings.WEBPOP_SANITIZE_HTML:  # test-only: the sandbox and CSP must hold alone
            raw = _parse(message).html_body
            if not raw:
                raise Http404
            return _frame_response(raw)
        cached, meta = ensure_rendered(message)
    except OSError:
        raise Http404 from None
    if not meta.get("has_html"):
        raise Http404
    return _frame_response(render_body(request, message, cached, meta))


@require_GET
def cid_image(request: HttpRequest, message_id: int, token: str, attachment_id: int) -> HttpResponse:
    """An image part of the message (a ``cid:`` reference), through a signed URL."""
    user_id, _remote = _check_token(token, message_id)
    attachment = get_object_or_404(Attachment, id=attachment_id, message_id=message_id, message__owner_id=user_id)
    if attachment.size > MAX_INLINE_IMAGE_BYTES:
        raise Http404
    try:
        with store.open_file(attachment.stored_path) as fh:
            data = fh.read(MAX_INLINE_IMAGE_BYTES + 1)
    except OSError:
        raise Http404 from None
    content_type = imageproxy.sniff_image(data)
    if content_type is None:  # not a raster image by its bytes: it stays a download
        raise Http404
    return _image_response(data, content_type)


@require_GET
def proxied_image(request: HttpRequest, message_id: int, token: str, index: int) -> HttpResponse:
    """A remote image of the message, fetched by the server for a reader who allowed it."""
    user_id, remote_allowed = _check_token(token, message_id)
    if not remote_allowed:
        raise PermissionDenied
    message = get_object_or_404(Message.objects.only("id", "html_cache_meta"), id=message_id, owner_id=user_id)
    urls = message.html_cache_meta.get("remote") or []
    if index >= len(urls):
        raise Http404
    try:
        image = imageproxy.fetch(urls[index])
    except imageproxy.ProxyError as exc:
        logger.info("image proxy: message %s image %s: %s", message_id, index, exc)
        return HttpResponse(gettext("The image could not be loaded."), status=502, content_type="text/plain")
    return _image_response(image.data, image.content_type)


@login_required
@require_POST
def remote_images_for_sender(request: HttpRequest, message_id: int) -> HttpResponse:
    """Always (or no longer) show remote images from this message's sender."""
    message = _own_message(request, message_id)
    sender = (message.from_email or "").strip().lower()
    action = request.POST.get("action")
    if not sender or action not in ("always", "never"):
        messages.error(request, gettext("This message has no sender address to remember."))
    elif action == "always":
        RemoteImagePreference.objects.get_or_create(owner=request.user, sender=sender)
        messages.success(request, gettext("Remote images from %(sender)s will be shown.") % {"sender": sender})
    else:
        RemoteImagePreference.objects.filter(owner=request.user, sender=sender).delete()
        messages.success(request, gettext("Remote images from %(sender)s will be blocked again.") % {"sender": sender})
    return redirect("mailbox:message", message.id)


@login_required
@require_http_methods(["GET", "POST"])
def remote_image_settings(request: HttpRequest) -> HttpResponse:
    """The per-user setting (every sender) and the senders remembered one by one."""
    prefs = RemoteImagePreference.objects.filter(owner=request.user)
    if request.method == "POST":
        if "everyone" in request.POST:
            if request.POST["everyone"] == "on":
                RemoteImagePreference.objects.get_or_create(owner=request.user, sender="")
                messages.success(request, gettext("Remote images are shown for every sender."))
            else:
                prefs.filter(sender="").delete()
                messages.success(request, gettext("Remote images are blocked unless you allow them."))
        if request.POST.get("remove"):
            prefs.filter(sender=request.POST["remove"].strip().lower()).exclude(sender="").delete()
            messages.success(request, gettext("Removed."))
        return redirect("mailbox:remote_image_settings")
    return render(
        request,
        "mailbox/remote_images.html",
        {"everyone": prefs.filter(sender="").exists(), "senders": prefs.exclude(sender="")},
    )
