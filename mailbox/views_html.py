"""HTML mail in the web UI: the sanitized body document, its images, remote-image choices.

The message page (``views.message_detail``) embeds the body from its own URL in
``<iframe sandbox="allow-popups allow-popups-to-escape-sandbox">``: no
``allow-scripts`` and no ``allow-same-origin``, so the frame has an opaque
origin. The body URL itself answers with a strict Content-Security-Policy
(which also sandboxes it when opened on its own), ``nosniff``, no Referer and
``frame-ancestors 'self'``. Its height follows its content with CSS alone
(``frame-sizing: content-height`` on the iframe, ``responsive-embedded-sizing``
in the body document); browsers without that get a resizable, scrolling frame.

Wide mail on a narrow screen (a 600 px newsletter on a phone) is fitted from the
message page, never from inside the frame (no script runs there):
``static/js/message.js`` reads the width the browser measured for the frame's
content when it loaded (``frame-sizing: content-width``, for a moment); when that
is wider than the frame, the page lays the frame out at the content's width,
scales it down with a CSS transform and loads it again so that its height is
measured at that width (the browser measures only on load). A frame loaded
again names that width (``?width=``): its document is laid out at least that
wide whatever viewport the browser gives it while loading, so the size the
browser measures is the one the page asked for. The reader can switch to the
actual size (then the frame's box scrolls sideways) and pinch-zoom as on any
page. Without that script, or in browsers without responsive iframes, wide
content scrolls sideways inside the frame: it is never cut off (the content's
own CSS cannot hide it, see ``FRAME_HEAD``).

The trailing quotation and signature (``mailbox/htmlfold.py``) are hidden in the
frame unless the page asks for them (``?quoted=1``); the page shows a "…" control
to switch, which works as a plain link and, with script, reloads only the frame.

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
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webpop.lib import cspolicy, pagecache

from . import damage, imageproxy, mime, plaintext, sanitize
from .models import Attachment, Message, RemoteImagePreference

logger = logging.getLogger(__name__)

ASSET_SALT = "webpop.mailbox.html-asset"
IFRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
FRAME_POLICY = {
    "default-src": [cspolicy.NONE],
    "img-src": [cspolicy.SELF, "data:"],
    "style-src": ["'unsafe-inline'"],
    "font-src": [cspolicy.SELF],
    "form-action": [cspolicy.NONE],
    "frame-ancestors": [cspolicy.SELF],
    "base-uri": [cspolicy.NONE],
    "sandbox": IFRAME_SANDBOX.split(),
}
MAX_INLINE_IMAGE_BYTES = 25 * 1024 * 1024

# The frame's own document around the sanitized body. Mail is designed for a light
# background: the frame stays light (its own color-scheme) whatever the app's theme.
# The container never clips or scrolls its content (whatever the mail's own CSS says,
# which the more specific rule outweighs): content wider than the frame overflows the
# document, so the browser reports its real width and the page can fit it (see above).
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
html > body > #webpop-message { overflow: visible !important; }
#webpop-message pre { white-space: pre-wrap; }
#webpop-message img[data-webpop-blocked] { outline: 1px dashed #b0b4ba; background: #f3f4f6; color: #5f6670; }
html > body.webpop-folded > #webpop-message .webpop-fold { display: none !important; }
</style>"""
FRAME_BODY = '</head><body><div id="webpop-message">'
FRAME_BODY_FOLDED = '</head><body class="webpop-folded"><div id="webpop-message">'
FRAME_LAYOUT_WIDTH = "<style>html { min-width: %dpx; }</style>"
MIN_LAYOUT_WIDTH, MAX_LAYOUT_WIDTH = 120, 4000
PLAIN_CACHE_MAX_CHARS = 100_000  # longer plain texts are parsed on each view, not kept
PLAIN_CACHE_TTL = 7 * 24 * 3600
FRAME_TAIL = "</div></body></html>\n"


# --- Rendering ----------------------------------------------------------------------------


def _parse(message: Message) -> mime.ParsedMessage:
    with damage.open_checked(message.raw_path, message.sha256) as fh:  # never a body from damaged bytes
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


def remote_images(request: HttpRequest, message: Message, meta: dict, query=None) -> dict:
    """Whether this view loads the message's remote images, and why (``query``: the message's own, else the page's)."""
    query = request.GET if query is None else query
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
        elif query.get("images") == "1":
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
    """One message's body (``_body.html``) and the attachments to list beside it."""
    return with_attachments(message, body_context(request, message, parsed))


def with_attachments(message: Message, body: dict) -> dict:
    # Parts shown inside the HTML (cid: images) are not listed again as attachments.
    inline = body["inline_cids"] if body["view"] == "html" else set()
    return {"body": body, "shown_attachments": [a for a in message.attachments.all() if a.id not in inline]}


def body_context(request: HttpRequest, message: Message, parsed: mime.ParsedMessage | None, query=None) -> dict:
    """One message's body for ``templates/mailbox/_body.html``: the HTML frame or the plain text.

    ``query``: what the reader chose for this message (view, quoted, images); the page's own by default.
    """
    html_body = parsed.html_body if parsed else ""
    meta = ensure_rendered(message, html_body)[1] if html_body else None
    return _body(request, message, request.GET if query is None else query, meta, lambda: _plain(parsed))


def cached_body_context(request: HttpRequest, message: Message, query) -> dict:
    """``body_context`` reading the stored message only when the caches cannot answer.

    HTML mail whose sanitized body is current needs nothing from the file (the frame loads it);
    plain text comes from ``plain_body``, which also remembers that a message has no HTML (so
    showing plain-text mail writes nothing). Raises OSError when the stored message cannot be read.
    """
    meta = message.html_cache_meta if message.html_cache_version == sanitize.VERSION else None
    if meta:
        html_meta = meta if meta.get("has_html") else None
        return _body(request, message, query, html_meta, lambda: plain_body(message))
    known = _cached_plain(message)
    if known is not None and not known[0]:
        return _body(request, message, query, None, lambda: known[1])
    parsed = _parse(message)
    if not parsed.html_body:
        return _body(request, message, query, None, lambda: plain_body(message, parsed))
    html_meta = ensure_rendered(message, parsed.html_body)[1]
    return _body(request, message, query, html_meta, lambda: plain_body(message, parsed))


def _plain(parsed: mime.ParsedMessage | None) -> plaintext.PlainText:
    return plaintext.parse(_text_of(parsed) if parsed else "")


def _text_of(parsed: mime.ParsedMessage) -> str:
    if parsed.text_body or not parsed.html_body:
        return parsed.text_body
    return re.sub(r"\n\s*\n(\s*\n)+", "\n\n", mime.html_to_text(parsed.html_body)).strip()


def _plain_key(message: Message) -> str:
    return f"plain-body:{message.id}:{message.sha256}:{plaintext.VERSION}"


def _cached_plain(message: Message) -> tuple[bool, plaintext.PlainText] | None:
    """(has HTML, the text) as ``plain_body`` kept it, or None."""
    try:
        found = cache.get(_plain_key(message))
    except Exception:
        logger.warning("cache unavailable for plain body of message %s", message.id)
        return None
    return found if isinstance(found, tuple) and len(found) == 2 else None


def plain_body(message: Message, parsed: mime.ParsedMessage | None = None) -> plaintext.PlainText:
    """The message's text for reading (plaintext.parse), from the cache when it was read before.

    Parsing the stored message is most of what showing a plain-text message costs; the result
    depends only on the stored bytes (``sha256``) and the parser, so it is kept under both, with
    whether the message has HTML. Very long texts are not kept (the cache stays small; they are
    rare). The cache being away only costs the parse. ``parsed``: the stored message, when the
    caller has read it already.
    """
    found = _cached_plain(message)
    if found is not None:
        return found[1]
    parsed = parsed or _parse(message)
    text = _text_of(parsed)
    plain = plaintext.parse(text)
    if len(text) <= PLAIN_CACHE_MAX_CHARS:
        try:
            cache.set(_plain_key(message), (bool(parsed.html_body), plain), PLAIN_CACHE_TTL)
        except Exception:
            logger.warning("cache unavailable for plain body of message %s", message.id)
    return plain


def _body(request: HttpRequest, message: Message, query, meta: dict | None, plain) -> dict:
    """``meta``: the sanitized HTML's (None for plain-text mail); ``plain()`` gives the text when shown."""
    has_html = meta is not None
    view = "html" if has_html and query.get("view") != "text" else "text"
    quoted = query.get("quoted") == "1"
    page_url = reverse("mailbox:message", args=[message.id])
    body = {
        "message": message,
        "has_html": has_html,
        "view": view,
        "iframe_sandbox": IFRAME_SANDBOX,
        "inline_cids": set(),
        "quoted": quoted,
        # The message's own page: its links (plain text, show images, "…" without script) open it there.
        "page_url": page_url,
    }
    if view == "text":
        body["plain"] = plain()
    if has_html:
        remote = remote_images(request, message, meta, query)
        params = {"images": "1"} if remote["reason"] == "once" else {}
        folded = bool(meta.get("folded"))
        if quoted and folded:
            params["quoted"] = "1"
        frame_url = reverse("mailbox:message_body", args=[message.id])
        body.update(
            remote=remote,
            frame_url=frame_url + (f"?{urlencode(params)}" if params else ""),
            inline_cids=set(meta.get("cids") or []),
            html_truncated=bool(meta.get("truncated")),
            folded=folded,
            quoted_url=page_url + _query_with(query, quoted=None if quoted else "1"),
        )
    return body


def _query_with(query, **changes: str | None) -> str:
    query = QueryDict(mutable=True) if not isinstance(query, QueryDict) else query.copy()
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return f"?{query.urlencode()}" if query else "?"


def _layout_width(request: HttpRequest) -> int | None:
    """The width the page lays the frame out at (``?width=``, CSS pixels), when it names one."""
    value = request.GET.get("width", "")
    if value.isascii() and value.isdigit() and MIN_LAYOUT_WIDTH <= int(value) <= MAX_LAYOUT_WIDTH:
        return int(value)
    return None


def _frame_response(body: str, *, folded: bool = False, width: int | None = None) -> HttpResponse:
    layout = FRAME_LAYOUT_WIDTH % width if width else ""
    document = FRAME_HEAD + layout + (FRAME_BODY_FOLDED if folded else FRAME_BODY) + body + FRAME_TAIL
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def _image_response(data: bytes, content_type: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = f"private, max-age={settings.WEBPOP_HTML_ASSET_MAX_AGE}"
    return response


# --- Views ---------------------------------------------------------------------------------


def _own_message(request: HttpRequest, message_id: int) -> Message:
    return get_object_or_404(Message, id=message_id, owner=request.user)


@cspolicy.policy(FRAME_POLICY)
@login_required
@require_GET
@xframe_options_sameorigin
def message_body(request: HttpRequest, message_id: int) -> HttpResponse:
    """The message's HTML as its own document, for the sandboxed frame on the message page."""
    message = _own_message(request, message_id)
    if damage.marked([message.raw_path]):  # the page says the original is damaged
        raise Http404
    try:
        if not settings.WEBPOP_SANITIZE_HTML:  # test-only: the sandbox and CSP must hold alone
            raw = _parse(message).html_body
            if not raw:
                raise Http404
            return _frame_response(raw, width=_layout_width(request))
        cached, meta = ensure_rendered(message)
    except OSError:
        raise Http404 from None
    if not meta.get("has_html"):
        raise Http404
    folded = bool(meta.get("folded")) and request.GET.get("quoted") != "1"
    body = render_body(request, message, cached, meta)
    return _frame_response(body, folded=folded, width=_layout_width(request))


@cspolicy.policy(cspolicy.ASSET)
@require_GET
def cid_image(request: HttpRequest, message_id: int, token: str, attachment_id: int) -> HttpResponse:
    """An image part of the message (a ``cid:`` reference), through a signed URL."""
    user_id, _remote = _check_token(token, message_id)
    attachment = get_object_or_404(Attachment, id=attachment_id, message_id=message_id, message__owner_id=user_id)
    if attachment.size > MAX_INLINE_IMAGE_BYTES:
        raise Http404
    try:
        with damage.open_checked(attachment.stored_path, attachment.sha256) as fh:
            data = fh.read(MAX_INLINE_IMAGE_BYTES + 1)
    except OSError:
        raise Http404 from None
    content_type = imageproxy.sniff_image(data)
    if content_type is None:  # not a raster image by its bytes: it stays a download
        raise Http404
    return _image_response(data, content_type)


@cspolicy.policy(cspolicy.ASSET)
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
    pagecache.touch_message_pages([request.user.id])  # the kept conversation page shows the choice
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
        pagecache.touch_message_pages([request.user.id])  # the kept conversation page shows the choice
        return redirect("mailbox:remote_image_settings")
    return render(
        request,
        "mailbox/remote_images.html",
        {"everyone": prefs.filter(sender="").exists(), "senders": prefs.exclude(sender="")},
    )
