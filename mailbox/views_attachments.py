"""Attachment previews: image thumbnails and the lightbox's image, the preview page, "download all".

Every view finds the attachment or message among the signed-in user's own
(404 otherwise), as the download does. Nothing from a message is served for
the browser to render as it likes: images are re-encoded by us
(mailbox/thumbnails.py), text is escaped into our page, calendars become a
card, and a PDF is drawn into canvases by pdf.js on our own page from the
download URL (its scripts never run: pdf.js has no scripting without its
sandbox, which is not shipped, and the page's CSP allows no eval).
"""

from __future__ import annotations

import csv
import logging
import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

from webpop.lib import cspolicy

from . import attachment_zip, attachments, damage, ical, mime, thumbnails
from .models import Attachment, Message

logger = logging.getLogger(__name__)

TEXT_PREVIEW_BYTES = 256 * 1024
CSV_MAX_ROWS = 500
CSV_MAX_COLUMNS = 40
ZIP_MAX_BYTES = 1024 * 1024 * 1024
ZIP_MAX_FILES = 1000


def _own_attachment(request: HttpRequest, attachment_id: int) -> Attachment:
    return get_object_or_404(
        Attachment.objects.select_related("message"), id=attachment_id, message__owner=request.user
    )


@cspolicy.policy(cspolicy.ASSET)
@login_required
@require_GET
def attachment_image(request: HttpRequest, attachment_id: int, size: str) -> HttpResponse:
    """A thumbnail ("thumb") or the lightbox's image ("large") of an image attachment, as WebP."""
    variant = thumbnails.SIZES.get(size)
    if variant is None:
        raise Http404
    attachment = _own_attachment(request, attachment_id)
    if attachments.kind_of(attachment.filename, attachment.content_type).preview != "image":
        raise Http404
    try:
        data = thumbnails.image_for(attachment, variant)
    except thumbnails.Refused:
        raise Http404 from None
    response = HttpResponse(data, content_type="image/webp")
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
@require_GET
def attachment_preview(request: HttpRequest, attachment_id: int) -> HttpResponse:
    """A page showing one attachment: the image, the PDF, the text or the calendar card."""
    attachment = _own_attachment(request, attachment_id)
    message = attachment.message
    item = attachments.item(attachment)
    siblings = [attachments.item(a) for a in message.attachments.all()]
    previewable = [s for s in siblings if s.preview]
    position = next((i for i, s in enumerate(previewable) if s.id == item.id), None)
    context = {
        "attachment": attachment,
        "item": item,
        "message": message,
        "position": None if position is None else position + 1,
        "count": len(previewable),
        "previous": previewable[position - 1] if position else None,
        "next": previewable[position + 1] if position is not None and position + 1 < len(previewable) else None,
    }
    if item.preview == "image":
        try:  # made now (bounded like every image) so that a refusal is said, not shown as a broken image
            thumbnails.image_for(attachment, thumbnails.SIZES["large"])
        except thumbnails.Refused:
            context["image_refused"] = True
    if item.preview in ("text", "calendar"):
        try:
            with damage.open_checked(attachment.stored_path, attachment.sha256) as fh:
                data = fh.read(TEXT_PREVIEW_BYTES + 1)
        except OSError:
            data = None
        if data is None:
            context["unreadable"] = True
        elif item.preview == "calendar":
            context["calendar"] = ical.read(mime.decode_text(data))
        else:
            context.update(_text_context(item, data))
    return render(request, "mailbox/attachment_preview.html", context)


def _text_context(item: attachments.Item, data: bytes) -> dict:
    truncated = len(data) > TEXT_PREVIEW_BYTES
    data = data[:TEXT_PREVIEW_BYTES]
    if b"\x00" in data[:8192]:  # binary, whatever its name says
        return {"binary": True}
    text = mime.decode_text(data)
    if truncated:
        text = text[:-1] if text.endswith("\ufffd") else text  # a character cut in half
    context = {"text": text, "truncated": truncated, "shown_bytes": attachments.size_in_words(len(data))}
    if item.kind.type_label in ("CSV", "TSV"):
        table = _table(text, "\t" if item.kind.type_label == "TSV" else None)
        if table:
            context["table"], context["table_cut"] = table
    return context


def _table(text: str, delimiter: str | None) -> tuple[list[list[str]], bool] | None:
    """The first rows of a CSV text as a table, or None when it does not read as one."""
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    rows, cut = [], False
    try:
        for number, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter)):
            if number >= CSV_MAX_ROWS:
                cut = True
                break
            cut = cut or len(row) > CSV_MAX_COLUMNS
            rows.append(row[:CSV_MAX_COLUMNS])
    except csv.Error:
        return None
    if not rows or max(len(r) for r in rows) < 2:
        return None
    width = max(len(r) for r in rows)
    return [r + [""] * (width - len(r)) for r in rows], cut


@cspolicy.policy(cspolicy.SANDBOX)
@login_required
@require_GET
def attachments_zip(request: HttpRequest, message_id: int) -> HttpResponse:
    """The message's attachments in one ZIP, streamed (not the images its formatted body shows)."""
    message = get_object_or_404(Message, id=message_id, owner=request.user)
    rows = attachments.zip_members(message)
    if not rows:
        raise Http404
    if len(rows) > ZIP_MAX_FILES or sum(a.size for a in rows) > ZIP_MAX_BYTES:
        messages.error(
            request, gettext("These attachments are too large to download together. Download them one by one.")
        )
        return redirect("mailbox:message", message.id)
    names = attachment_zip.unique_names([a.filename for a in rows])
    entries = [
        attachment_zip.Entry(name, a.size, lambda a=a: damage.open_checked(a.stored_path, a.sha256))
        for name, a in zip(names, rows, strict=True)
    ]
    stamp = timezone.localtime(message.date).timetuple()[:6]

    def unreadable(entry: attachment_zip.Entry) -> None:
        logger.warning("an attachment of message %s is not readable: left out of its ZIP", message.id)

    response = StreamingHttpResponse(
        attachment_zip.stream(entries, date_time=stamp, on_unreadable=unreadable), content_type="application/zip"
    )
    subject = re.sub(r"[/\\]", "_", message.subject)  # a slash in a subject is not a folder
    subject = attachment_zip.safe_name(subject, "attachments")[:80].rstrip(" .") or "attachments"
    response["Content-Disposition"] = content_disposition_header(True, f"{subject}.zip")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
