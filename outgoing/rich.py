"""Rich text drafts: the editor's HTML kept clean with its pictures, and what such a draft sends.

The editor shows a draft's pictures from our URL (``outgoing:image``); the row keeps them as ``cid:``
references to its inline attachments (``OutgoingAttachment.content_id``), so the stored HTML is
always what would be sent (``richtext.clean``), and the pictures go out only while the text shows them.
"""

from __future__ import annotations

from django.urls import reverse

from accounts.models import Profile

from . import compose, richtext
from .models import OutgoingAttachment, OutgoingMessage

# Pictures the editor may hold: raster images every mail program shows (no SVG: it can carry script),
# known by their first bytes.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


class ImageRefused(ValueError):
    """The picture cannot be added (not a picture we take, too large, the message is not a draft)."""


def preferred_format(user_id: int) -> str:
    """ "rich" or "plain": how the user's new messages start (Preferences)."""
    chosen = Profile.objects.filter(user_id=user_id).values_list("compose_format", flat=True).first()
    return chosen or "rich"


def start_reply(
    outgoing: OutgoingMessage, original: compose.Original, identity, signature: str, placement: str, pictures=None
):
    """A reply or forward (not saved yet) in rich text: its HTML, and the text version of that.

    ``pictures``: a forward's original Content-IDs -> those of its copies (``forwarded.new_content_ids``).
    """
    signature_html = identity.signature_html if identity is not None else ""
    if outgoing.kind == OutgoingMessage.Kind.FORWARD:
        outgoing.body_html = compose.forward_html(original, signature_html, signature, placement, pictures)
    else:
        outgoing.body_html = compose.reply_html(original, signature_html, signature, placement)
    outgoing.body = text_of(None, outgoing.body_html)


def image_path(outgoing_id: int, attachment_id: int) -> str:
    return reverse("outgoing:image", args=[outgoing_id, attachment_id])


def _pictures(outgoing: OutgoingMessage) -> list[OutgoingAttachment]:
    if outgoing is None or not outgoing.pk:
        return []
    rows = OutgoingAttachment.objects.filter(message_id=outgoing.pk).exclude(content_id="")
    return list(rows.only("id", "content_id", "filename"))


def stored_html(outgoing: OutgoingMessage | None, posted: str) -> str:
    """What the editor posted, as the row keeps it: its pictures as ``cid:`` references, cleaned."""
    pictures = _pictures(outgoing)
    by_path = {image_path(outgoing.pk, p.id): p.content_id for p in pictures}
    return richtext.clean(richtext.images_to_cids(posted, by_path), [p.content_id for p in pictures])


def editor_html(outgoing: OutgoingMessage) -> str:
    """The row's HTML for the editor: its pictures shown from our URL."""
    by_cid = {p.content_id: image_path(outgoing.pk, p.id) for p in _pictures(outgoing)}
    return richtext.cids_to_images(outgoing.body_html, by_cid)


def text_of(outgoing: OutgoingMessage | None, html: str) -> str:
    """The plain text version of ``html`` (clean), pictures by their file names."""
    return richtext.html_to_text(html, {p.content_id: p.filename for p in _pictures(outgoing)})


def sendable(outgoing: OutgoingMessage) -> tuple[str, str, list[tuple[str, str, str, bytes]]]:
    """(HTML, text, pictures) of a rich draft, checked again (a row may come from an older version)."""
    pictures = list(OutgoingAttachment.objects.filter(message_id=outgoing.pk).exclude(content_id=""))
    html = richtext.clean(outgoing.body_html, [p.content_id for p in pictures])
    shown = [p for p in pictures if f'src="cid:{p.content_id}"'.lower() in html.lower()]
    text = richtext.html_to_text(html, {p.content_id: p.filename for p in shown})
    return html, text, [(p.content_id, p.filename, p.content_type, bytes(p.data)) for p in shown]


def picture_type(data: bytes) -> str | None:
    """The type of a picture we take, from its first bytes (not from what the browser said)."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
