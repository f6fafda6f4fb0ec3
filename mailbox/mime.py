"""Parse a raw RFC 5322 message into what webpop stores and shows.

Parsing never raises for bad input: every header falls back to a placeholder
and every body part to its raw bytes decoded leniently. The raw message is
stored byte-exact elsewhere, so nothing is lost whatever this module makes of it.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import BinaryIO

SNIPPET_LENGTH = 200
MAX_PARTS = 1000
_WS = re.compile(r"\s+")
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str = ""
    inline: bool = False


@dataclass
class ParsedMessage:
    subject: str = ""
    from_name: str = ""
    from_email: str = ""
    to: str = ""
    cc: str = ""
    date: dt.datetime | None = None
    message_id: str = ""
    in_reply_to: str = ""
    references: str = ""
    text_body: str = ""
    html_body: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    @property
    def snippet(self) -> str:
        text = self.text_body or html_to_text(self.html_body)
        text = _WS.sub(" ", text).strip()
        return text[:SNIPPET_LENGTH]


def parse_file(fp: BinaryIO) -> ParsedMessage:
    return _parse(email.message_from_binary_file(fp, policy=email.policy.default))


def parse_bytes(data: bytes) -> ParsedMessage:
    return _parse(email.message_from_bytes(data, policy=email.policy.default))


def html_to_text(markup: str) -> str:
    return html.unescape(_TAGS.sub(" ", markup or ""))


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # malformed header the policy cannot fold/parse
        value = None
    if value is None:
        return ""
    try:
        text = str(value)
    except Exception:
        text = repr(value)
    return _WS.sub(" ", text).strip()


def _addresses(msg: Message, name: str) -> str:
    values = msg.get_all(name, [])
    try:
        pairs = getaddresses([str(v) for v in values])
    except Exception:
        return _header(msg, name)
    out = []
    for display, addr in pairs:
        if display and addr:
            out.append(f"{display} <{addr}>")
        elif addr or display:
            out.append(addr or display)
    return ", ".join(out)


def _parse_date(msg: Message) -> dt.datetime | None:
    raw = _header(msg, "Date")
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _decode_text(part: Message) -> str:
    try:
        content = part.get_content()
    except Exception:  # unknown charset or broken transfer encoding: decode by hand
        content = None
    if isinstance(content, str):
        return content
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "utf-8"
    for candidate in (charset, "utf-8"):
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1", "replace")


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        try:
            name = part.get_param("name", header="content-type")
            if isinstance(name, tuple):
                name = email.utils.collapse_rfc2231_value(name)
        except Exception:
            name = None
    return (str(name) if name else "").strip()


def _parse(msg: EmailMessage) -> ParsedMessage:
    parsed = ParsedMessage(
        subject=_header(msg, "Subject"),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        date=_parse_date(msg),
        message_id=_header(msg, "Message-ID")[:998],
        in_reply_to=_header(msg, "In-Reply-To"),
        references=_header(msg, "References"),
        defects=[type(d).__name__ for d in msg.defects],
    )
    try:
        senders = getaddresses([str(v) for v in msg.get_all("From", [])])
    except Exception:
        senders = []
    if senders:
        parsed.from_name, parsed.from_email = senders[0]
    if not (parsed.from_name or parsed.from_email):
        parsed.from_name = _header(msg, "From")

    for count, part in enumerate(_leaves(msg)):
        if count >= MAX_PARTS:
            parsed.defects.append("TooManyParts")
            break
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part)
        if disposition != "attachment" and not filename and content_type in ("text/plain", "text/html"):
            text = _decode_text(part)
            if content_type == "text/plain" and not parsed.text_body:
                parsed.text_body = text
            elif content_type == "text/html" and not parsed.html_body:
                parsed.html_body = text
            continue
        if part is msg and content_type.startswith("text/"):
            parsed.text_body = _decode_text(part)
            continue
        if content_type == "message/rfc822":
            data = _attached_message_bytes(part)
        else:
            data = part.get_payload(decode=True)
        if data is None:
            payload = part.get_payload()
            data = payload.encode("utf-8", "replace") if isinstance(payload, str) else b""
        parsed.attachments.append(
            ParsedAttachment(
                filename=filename or _default_name(content_type, len(parsed.attachments) + 1),
                content_type=content_type,
                data=data,
                content_id=_header(part, "Content-ID").strip("<>"),
                inline=disposition == "inline",
            )
        )
    return parsed


def _leaves(msg: Message, depth: int = 0):
    """Leaf parts in order; attached messages are leaves, not descended into."""
    if msg.get_content_maintype() == "multipart" and depth < 100:
        payload = msg.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                yield from _leaves(sub, depth + 1)
            return
    yield msg


def _attached_message_bytes(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        try:
            return payload[0].as_bytes(policy=email.policy.compat32)
        except Exception:
            return str(payload[0]).encode("utf-8", "replace")
    return payload.encode("utf-8", "replace") if isinstance(payload, str) else b""


def _default_name(content_type: str, index: int) -> str:
    extension = {"message/rfc822": "eml", "text/calendar": "ics", "text/plain": "txt", "text/html": "html"}.get(
        content_type, "bin"
    )
    return f"attachment-{index}.{extension}"
