"""What a forward carries besides its text: the original's attachments, and the pictures its HTML shows.

A rich forward shows those pictures where the original did (sent as related parts, under new Content-IDs of
ours); a plain one, or a picture of a type the editor does not take, carries them as attachments.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbox import damage
from mailbox.models import Attachment, Message

from . import compose, rich
from .models import OutgoingAttachment, OutgoingMessage


@dataclass
class Part:
    filename: str
    content_type: str
    data: bytes
    content_id: str  # the original's, if it has one (its HTML may show it)


def parts_of(message: Message) -> list[Part]:
    """The original's attachments; raises ``damage.DamagedFileError`` when one is damaged (never forwarded broken)."""
    parts = []
    for attachment in Attachment.objects.filter(message=message).order_by("id"):
        data = damage.read_checked(attachment.stored_path, attachment.sha256)
        # Any part with a Content-ID, as the message view shows it when the HTML does (whatever its disposition)
        parts.append(Part(attachment.filename, attachment.content_type, data, attachment.content_id))
    return parts


def new_content_ids(parts: list[Part], sender: str) -> dict[str, str]:
    """The original's Content-ID -> ours, for each picture a rich forward can show."""
    return {
        part.content_id: compose.new_message_id(sender)[1:-1]  # <random@domain> without its brackets
        for part in parts
        if part.content_id and rich.picture_type(part.data)
    }


def copies(outgoing: OutgoingMessage, parts: list[Part], new_by_old: dict[str, str]) -> list[OutgoingAttachment]:
    """The forward's rows (not saved): pictures its HTML shows stay pictures, everything else is an attachment."""
    rows, shown = [], set()
    for part in parts:
        cid = new_by_old.get(part.content_id, "") if part.content_id else ""
        if cid and f'src="cid:{cid}"' in outgoing.body_html and cid not in shown:
            shown.add(cid)
            kind = rich.picture_type(part.data)
        else:
            cid, kind = "", compose.media_type(part.content_type)
        rows.append(
            OutgoingAttachment(
                message=outgoing,
                filename=compose.file_name(part.filename),
                content_type=kind,
                size=len(part.data),
                data=part.data,
                content_id=cid,
            )
        )
    return rows
