"""The walk: a raw message into the headers, bodies and attachments webpop stores and shows.

The MIME tree is walked over byte offsets of one buffer (an ``mmap`` of the
stored file, or the bytes given), and only the parts ingest needs are decoded.
Walking offsets instead of building ``email``'s object tree keeps parsing
several times faster than a ``policy.default`` walk, keeps the memory for a
50 MB message near its size, and lets an attached ``message/rfc822`` be kept
byte-exact.
"""

from __future__ import annotations

import binascii
import contextlib
import datetime as dt
import html
import mmap
import os
import re
from dataclasses import dataclass, field
from typing import BinaryIO

from .. import categories
from .addresses import MAX_FIELD_CHARS, _first_sender, _format_address_list, _message_ids, parse_date
from .calendars import calendar_summary
from .charsets import _clean, _one_line, decode_text
from .filenames import _default_name, clean_filename
from .headers import Buffer, _Headers, _raw_text, _read_headers
from .text import _snippet, html_to_text, unflow
from .tnef import tnef_files
from .transfer import _b64decode, _uudecode

# Bounds: beyond them the rest of the message is not shown (the raw file keeps
# everything) and the message carries a notice.
MAX_DEPTH = 20  # nested multiparts
MAX_PARTS = 1000  # MIME entities, containers included
MAX_TEXT_BYTES = 4 * 1024 * 1024  # a larger text part is listed as an attachment instead of shown
MAX_SUBJECT_CHARS = 2_000
SEARCH_TEXT_LIMIT = 100_000
MAX_CALENDARS = 5  # calendar parts summarized; reading one costs far more than walking it
FUTURE_DATE_TOLERANCE = dt.timedelta(days=1)

TNEF_TYPES = {"application/ms-tnef", "application/vnd.ms-tnef"}
CALENDAR_TYPES = {"text/calendar", "application/ics"}
MESSAGE_TYPES = {"message/rfc822", "message/global"}


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str = ""
    inline: bool = False


@dataclass
class ParsedMessage:
    """What ingest stores and the message page shows.

    ``text_body`` is the plain text (the plain alternative, inline text parts
    joined); ``html_body`` the HTML to display, unsanitized (sanitizing is the
    view's job, never ingest's); ``date`` is None when neither the Date header
    nor a Received stamp is usable. ``snippet`` and ``search_text`` are
    readable text, HTML converted.
    """

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
    snippet: str = ""
    search_text: str = ""
    calendar_summary: str = ""
    parse_notice: str = ""
    # Mailing-list fields as written (mailbox/list_headers.py reads them): how to unsubscribe.
    list_unsubscribe: str = ""
    list_unsubscribe_post: str = ""
    list_id: str = ""
    # The fields mailbox/categories.py sorts Inbox tabs by (decoded, one line each, bounded).
    category_headers: dict[str, str] = field(default_factory=dict)


# --- Entry points ---------------------------------------------------------------


def parse(source: Buffer | BinaryIO, *, received_at: dt.datetime | None = None) -> ParsedMessage:
    """Parse bytes or an open binary file. ``received_at`` is the fallback date."""
    if isinstance(source, bytes | bytearray | mmap.mmap):
        return _Walker(source, received_at).run()
    return parse_file(source, received_at=received_at)


def parse_bytes(data: bytes, *, received_at: dt.datetime | None = None) -> ParsedMessage:
    return _Walker(bytes(data), received_at).run()


# Below this size a file is read: mapping and unmapping cost more than copying small mail.
MAP_THRESHOLD = 1024 * 1024


def parse_file(fp: BinaryIO, *, received_at: dt.datetime | None = None) -> ParsedMessage:
    """Parse a whole file; a big real file is mapped, not read, so big messages cost little memory."""
    try:
        if os.fstat(fp.fileno()).st_size < MAP_THRESHOLD:
            fp.seek(0)
            return _Walker(fp.read(), received_at).run()
    except (AttributeError, OSError, ValueError):  # not a real file
        pass
    try:
        mapped = mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, ValueError):  # not a real file, or empty
        with contextlib.suppress(AttributeError, OSError):
            fp.seek(0)
        return _Walker(fp.read(), received_at).run()
    try:
        return _Walker(mapped, received_at).run()
    finally:
        with contextlib.suppress(BufferError):  # a view still alive: the garbage collector closes it
            mapped.close()


# --- The walk -----------------------------------------------------------------------------


@dataclass
class _Piece:
    """One displayed body part: its plain text, its HTML, or both (an alternative)."""

    plain: str | None = None
    html: str | None = None


class _Limit(Exception):
    """The part budget is spent: stop walking."""


class _Walker:
    def __init__(self, buf: Buffer, received_at: dt.datetime | None) -> None:
        self.buf = buf
        self.received_at = received_at or dt.datetime.now(dt.UTC)
        self.view = memoryview(buf)
        self.entities = 0
        self.pieces: list[_Piece] = []
        self.attachments: list[ParsedAttachment] = []
        self.calendars: list[str] = []
        self.calendars_read = 0
        self.defects: list[str] = []
        self.notices: dict[str, str] = {}

    def run(self) -> ParsedMessage:
        try:
            headers, body_start = _read_headers(self.buf, 0, len(self.buf))
            if headers.truncated:
                self.notice("headers", "Some headers of this message are too large; they are cut short here.")
            parsed = self.header_fields(headers)
            try:
                self.entity(headers, body_start, len(self.buf), depth=0, root=True)
            except _Limit:
                pass
            except RecursionError:
                self.notice("depth", "This message is nested too deeply to show in full.")
            self.finish(parsed)
            return parsed
        finally:
            self.view.release()

    # -- bookkeeping

    def notice(self, key: str, text: str) -> None:
        self.notices.setdefault(key, text)
        self.defects.append(key)

    def count(self) -> None:
        self.entities += 1
        if self.entities > MAX_PARTS:
            self.notice(
                "parts", f"This message has more than {MAX_PARTS:,} parts; only the first {MAX_PARTS:,} are shown."
            )
            raise _Limit

    # -- headers

    def header_fields(self, headers: _Headers) -> ParsedMessage:
        hint = headers.charset()
        parsed = ParsedMessage()
        parsed.subject = _one_line(headers.text("subject", hint), MAX_SUBJECT_CHARS)
        sender = headers.first("from") or headers.first("sender") or headers.first("reply-to")
        if sender is not None:
            parsed.from_name, parsed.from_email = _first_sender(_raw_text(sender, hint))
            parsed.from_email = parsed.from_email[:320]
        parsed.to = self.addresses(headers, "to", hint)
        parsed.cc = self.addresses(headers, "cc", hint)
        parsed.date = self.date(headers)
        message_ids = _message_ids(_raw_text(headers.first("message-id") or b""))
        parsed.message_id = message_ids[0] if message_ids else _one_line(headers.text("message-id"), 998)
        replied = _message_ids(_raw_text(headers.first("in-reply-to") or b""))
        parsed.in_reply_to = replied[0] if replied else _one_line(headers.text("in-reply-to"), 998)
        references = _message_ids(_raw_text(b" ".join(headers.fields.get("references", []))))
        if len(references) > 40:  # threading needs the root and the nearest ancestors
            references = references[:1] + references[-39:]
        parsed.references = " ".join(references)
        parsed.list_unsubscribe = _raw_text(headers.first("list-unsubscribe") or b"")[:MAX_FIELD_CHARS].strip()
        parsed.list_unsubscribe_post = _one_line(_raw_text(headers.first("list-unsubscribe-post") or b""), 200)
        parsed.list_id = _one_line(headers.text("list-id", hint), 1000)
        parsed.category_headers = {
            name: _one_line(headers.text(name, hint), categories.MAX_VALUE_CHARS)
            for name in headers.fields
            if categories.wanted(name)
        }
        return parsed

    def addresses(self, headers: _Headers, name: str, hint: str | None) -> str:
        values = headers.fields.get(name, [])
        return _format_address_list(", ".join(_raw_text(v, hint) for v in values)) if values else ""

    def date(self, headers: _Headers) -> dt.datetime | None:
        value = parse_date(headers.text("date")) if headers.first("date") is not None else None
        if value is None:
            self.defects.append("date-missing-or-unreadable")
        elif value > self.received_at + FUTURE_DATE_TOLERANCE:
            self.defects.append("date-in-future")
            value = None
        if value is None:
            # The receiving server's own stamp is the best guess at when it arrived.
            received = headers.first("received")
            if received is not None:
                stamp = parse_date(_raw_text(received).rpartition(";")[2])
                if stamp is not None and stamp <= self.received_at + FUTURE_DATE_TOLERANCE:
                    return stamp
        return value

    # -- structure

    def entity(self, headers: _Headers, start: int, end: int, depth: int, root: bool = False, related: bool = False):
        self.count()
        ctype = headers.content_type()
        if ctype.startswith("multipart/"):
            if depth >= MAX_DEPTH:
                self.notice(
                    "depth", f"This message is nested more than {MAX_DEPTH} levels deep; deeper parts are not shown."
                )
                return
            children = self.children(headers, start, end, ctype)
            if children is not None:
                self.multipart(headers, ctype, children, depth)
                return
            headers.mime.replace_header("content-type", "text/plain")
            headers.load_mime()
            ctype = "text/plain"
        if ctype in MESSAGE_TYPES:
            self.attached_message(headers, start, end)
            return
        self.leaf(headers, start, end, root=root, related=related)

    def children(self, headers: _Headers, start: int, end: int, ctype: str) -> list[tuple[_Headers, int, int]] | None:
        boundary = headers.boundary()
        spans = self.split(start, end, boundary) if boundary else None
        if not spans:
            guessed = self.guess_boundary(start, end)
            if guessed:
                self.defects.append("boundary-mismatch")
                spans = self.split(start, end, guessed)
        if not spans:
            self.defects.append("no-boundary")
            return None
        default = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
        out = []
        for part_start, part_end in spans:
            part_headers, body_start = _read_headers(self.buf, part_start, part_end, default)
            out.append((part_headers, min(body_start, part_end), part_end))
        return out

    def split(self, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
        """Spans of the parts between delimiter lines; the line break before a delimiter belongs to it."""
        buf, delimiter = self.buf, b"--" + boundary
        spans: list[tuple[int, int]] = []
        current: int | None = None
        pos = start
        while True:
            found = buf.find(delimiter, pos, end)
            if found < 0:
                break
            pos = found + 1
            if found > start and buf[found - 1] not in (10, 13):
                continue
            after = found + len(delimiter)
            closing = buf[after : after + 2] == b"--"
            line_end = _line_end(buf, after, end)
            if buf[after + 2 if closing else after : line_end].strip(b" \t"):
                continue  # a longer boundary, or text that merely starts like one
            content_end = found
            if found > start and buf[found - 1] == 10:
                content_end -= 2 if found - 1 > start and buf[found - 2] == 13 else 1
            elif found > start:
                content_end -= 1
            if current is not None:
                spans.append((current, max(current, content_end)))
            if closing:
                return spans
            current = _skip_line_break(buf, line_end, end)
            pos = current
        if current is not None:
            self.defects.append("close-boundary-missing")
            spans.append((current, end))
        return spans

    def guess_boundary(self, start: int, end: int) -> bytes | None:
        """When the declared boundary never appears, use the first line that looks like a delimiter."""
        match = _DELIMITER_LIKE.search(self.buf, start, min(end, start + 65536))
        if not match:
            return None
        candidate = match.group(1)
        return candidate[:-2] if candidate.endswith(b"--") else candidate

    def multipart(self, headers: _Headers, ctype: str, children: list, depth: int) -> None:
        subtype = ctype.split("/", 1)[1]
        if subtype == "alternative":
            self.alternative(children, depth)
        elif subtype == "related":
            self.related(headers, children, depth)
        else:
            encrypted = subtype == "encrypted"
            for part_headers, start, end in children:
                if encrypted and part_headers.content_type() == "application/octet-stream":
                    part_headers.params().setdefault("name", "encrypted.asc")
                self.entity(part_headers, start, end, depth + 1)

    def alternative(self, children: list, depth: int) -> None:
        """Mail clients show the last HTML-capable alternative and use the plain one for text."""
        types = [part_headers.content_type() for part_headers, _s, _e in children]
        plain = _last_index(types, lambda t: t == "text/plain")
        rich = _last_index(types, lambda t: t == "text/html" or t.startswith("multipart/"))
        if plain is None and rich is None:
            for part_headers, start, end in children:
                self.entity(part_headers, start, end, depth + 1)
            return
        saved_pieces, saved_attachments = self.pieces, self.attachments
        branches: list[tuple[list[_Piece], list[ParsedAttachment]]] = []
        try:
            for index in (plain, rich):
                self.pieces, self.attachments = [], []
                if index is not None:
                    self.entity(*children[index], depth + 1)
                branches.append((self.pieces, self.attachments))
        finally:
            self.pieces, self.attachments = saved_pieces, saved_attachments
            for _pieces, attachments in branches:  # on _Limit too: keep what was found
                for attachment in attachments:
                    if not any(_same(attachment, seen) for seen in self.attachments):
                        self.attachments.append(attachment)
        (plain_pieces, _), (rich_pieces, _) = branches
        text = "\n\n".join(p.plain if p.plain is not None else html_to_text(p.html or "") for p in plain_pieces)
        markup = _join_html(rich_pieces) if any(p.html is not None for p in rich_pieces) else None
        if markup is None and rich_pieces:
            text = text or "\n\n".join(p.plain or "" for p in rich_pieces)
        if plain_pieces or rich_pieces:
            self.pieces.append(_Piece(plain=text if plain_pieces or markup is None else None, html=markup))
        for index, ctype in enumerate(types):
            if ctype in CALENDAR_TYPES and index not in (plain, rich):
                self.entity(*children[index], depth + 1)

    def related(self, headers: _Headers, children: list, depth: int) -> None:
        start_id = headers.param("start").strip("<> ")
        root = 0
        if start_id:
            root = next((i for i, (h, _s, _e) in enumerate(children) if h.content_id() == start_id), 0)
        self.entity(*children[root], depth + 1)
        for index, (part_headers, start, end) in enumerate(children):
            if index != root:
                self.entity(part_headers, start, end, depth + 1, related=True)

    def attached_message(self, headers: _Headers, start: int, end: int) -> None:
        data = self.decode(headers, start, end)
        name = clean_filename(headers.param("filename", "content-disposition") or headers.param("name"))
        if not name:
            inner, _ = _read_headers(data, 0, len(data))
            subject = _one_line(inner.text("subject"), 120).replace("/", "-")
            name = clean_filename(f"{subject}.eml") if subject else ""
        self.attach(name, headers.content_type(), data, headers, inline=False)

    def leaf(self, headers: _Headers, start: int, end: int, root: bool, related: bool) -> None:
        ctype = headers.content_type()
        disposition = headers.disposition()
        filename = clean_filename(headers.filename())
        body_candidate = not related and disposition != "attachment" and not filename
        shown = ctype in ("text/plain", "text/html") or (root and ctype.startswith("text/"))
        if body_candidate and shown and ctype not in CALENDAR_TYPES and self.body_text(headers, start, end, ctype):
            return
        data = self.decode(headers, start, end)
        if ctype in CALENDAR_TYPES and self.calendars_read < MAX_CALENDARS:
            self.calendars_read += 1
            summary = calendar_summary(decode_text(data, headers.charset()))
            if summary:
                self.calendars.append(summary)
        if ctype in TNEF_TYPES or filename.lower() == "winmail.dat":
            files = tnef_files(data)
            if files:
                for name, file_type, body in files:
                    self.attachments.append(
                        ParsedAttachment(
                            filename=clean_filename(name) or _default_name(file_type, len(self.attachments) + 1),
                            content_type=_one_line(file_type, 255).lower(),
                            data=body,
                        )
                    )
                return
            self.defects.append("tnef-unreadable")
        inline = disposition == "inline" or (related and disposition != "attachment")
        self.attach(filename, ctype, data, headers, inline=inline)

    def body_text(self, headers: _Headers, start: int, end: int, ctype: str) -> bool:
        """Add a displayed text part; False when it is too large to show (then it is an attachment)."""
        if end - start > MAX_TEXT_BYTES * 2:
            self.notice("text-size", "A text part is too large to show here; it is listed as an attachment.")
            return False
        data = self.decode(headers, start, end)
        if len(data) > MAX_TEXT_BYTES:
            self.notice("text-size", "A text part is too large to show here; it is listed as an attachment.")
            return False
        text = decode_text(data, headers.charset())
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if text.startswith("\ufeff"):
            text = text[1:]
        if ctype == "text/html":
            self.pieces.append(_Piece(html=text))
            return True
        if headers.param("format").lower() == "flowed":
            text = unflow(text, headers.param("delsp").lower() == "yes")
        self.pieces.append(_Piece(plain=text))
        return True

    def decode(self, headers: _Headers, start: int, end: int) -> bytes:
        """The part's bytes with its transfer encoding undone, leniently."""
        cte = headers.transfer_encoding()
        try:
            if "base64" in cte:
                equals = self.buf.find(b"=", start, end)
                inside = equals >= 0 and bool(self.buf[equals:end].strip(b"=\r\n\t "))
                with self.view[start:end] as chunk:
                    return _b64decode(chunk, inside)
            if "quoted-printable" in cte:
                with self.view[start:end] as chunk:
                    return binascii.a2b_qp(chunk)
            if "uue" in cte or cte == "x-uuencode":
                return _uudecode(self.buf[start:end])
        except (binascii.Error, ValueError):
            self.defects.append("transfer-encoding-unreadable")
        return bytes(self.buf[start:end])

    def attach(self, filename: str, ctype: str, data: bytes, headers: _Headers, inline: bool) -> None:
        self.attachments.append(
            ParsedAttachment(
                filename=filename or _default_name(ctype, len(self.attachments) + 1),
                content_type=_one_line(ctype, 255),
                data=data,
                content_id=headers.content_id(),
                inline=inline,
            )
        )

    # -- result

    def finish(self, parsed: ParsedMessage) -> None:
        parsed.attachments = self.attachments
        parsed.calendar_summary = "\n\n".join(self.calendars)
        plain = [p.plain for p in self.pieces if p.plain is not None]
        parsed.text_body = _clean("\n\n".join(plain))
        parsed.html_body = _clean(_join_html(self.pieces)) if any(p.html is not None for p in self.pieces) else ""
        if not parsed.text_body and not parsed.html_body and parsed.calendar_summary:
            parsed.text_body = parsed.calendar_summary
        readable = "\n\n".join(p.plain if p.plain is not None else html_to_text(p.html or "") for p in self.pieces)
        if not readable.strip():
            readable = parsed.calendar_summary
        parsed.snippet = _clean(_snippet(readable))
        # Search indexes tokenize for themselves: the text goes in as it is, bounded.
        extras = [parsed.calendar_summary, *(a.filename for a in self.attachments[:100])]
        parsed.search_text = _clean("\n".join(s for s in [readable[:SEARCH_TEXT_LIMIT], *extras] if s))
        parsed.defects = self.defects
        parsed.parse_notice = " ".join(self.notices.values())
        for name in ("subject", "from_name", "from_email", "to", "cc", "message_id", "in_reply_to", "references"):
            setattr(parsed, name, _clean(getattr(parsed, name)))
        for attachment in parsed.attachments:
            attachment.filename = _clean(attachment.filename)
            attachment.content_type = _clean(attachment.content_type).lower()
            attachment.content_id = _clean(attachment.content_id)


# --- Helpers ---------------------------------------------------------------------------

_DELIMITER_LIKE = re.compile(rb"^--([^\r\n]{1,200}?)[ \t]*(?=\r\n|\n|\r|\Z)", re.MULTILINE)


def _line_end(buf: Buffer, pos: int, end: int) -> int:
    newline = buf.find(b"\n", pos, end)
    limit = end if newline < 0 else newline
    carriage = buf.find(b"\r", pos, limit)
    return carriage if carriage >= 0 else limit


def _skip_line_break(buf: Buffer, pos: int, end: int) -> int:
    if pos < end and buf[pos] == 13:
        pos += 1
        if pos < end and buf[pos] == 10:
            pos += 1
    elif pos < end and buf[pos] == 10:
        pos += 1
    return pos


def _last_index(items: list[str], predicate) -> int | None:
    for index in range(len(items) - 1, -1, -1):
        if predicate(items[index]):
            return index
    return None


def _same(a: ParsedAttachment, b: ParsedAttachment) -> bool:
    return a.filename == b.filename and a.content_id == b.content_id and a.data == b.data


def _join_html(pieces: list[_Piece]) -> str:
    return "\n".join(p.html if p.html is not None else f"<pre>{html.escape(p.plain or '')}</pre>" for p in pieces)
