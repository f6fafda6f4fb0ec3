"""Parse a raw RFC 5322 message into what webpop stores and shows.

Parsing never raises for bad input: a missing or unreadable header comes out
empty (the UI shows its placeholder, the date falls back to the receiving
server's stamp or the time of receipt) and every body part is decoded
leniently. The raw message is stored byte-exact elsewhere, so nothing is lost
whatever this module makes of it; limits (MAX_*) bound the work, and a message
beyond them carries a ``parse_notice``.

How: the MIME tree is walked over byte offsets of one buffer (an ``mmap`` of
the stored file, or the bytes given), and only the parts ingest needs are
decoded. Header semantics come from the standard library's ``email`` package
(``email.message.Message`` for Content-Type parameters and RFC 2231,
``email.utils`` for addresses and dates). Walking offsets instead of building
``email``'s object tree makes parsing several times faster than a
``policy.default`` walk, keeps the memory for a 50 MB message near its size,
and lets an attached ``message/rfc822`` be kept byte-exact.
"""

from __future__ import annotations

import binascii
import codecs
import contextlib
import datetime as dt
import email.message
import email.utils
import functools
import html
import mimetypes
import mmap
import os
import re
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

import pybase64

from . import categories

# Bounds: beyond them the rest of the message is not shown (the raw file keeps
# everything) and the message carries a notice.
MAX_DEPTH = 20  # nested multiparts
MAX_PARTS = 1000  # MIME entities, containers included
MAX_HEADER_BYTES = 256 * 1024  # one header block
MAX_TEXT_BYTES = 4 * 1024 * 1024  # a larger text part is listed as an attachment instead of shown
MAX_FIELD_CHARS = 10_000  # To, Cc, References ...
MAX_SUBJECT_CHARS = 2_000
SNIPPET_LENGTH = 200
SEARCH_TEXT_LIMIT = 100_000
HTML_TO_TEXT_INPUT_LIMIT = 500_000
FUTURE_DATE_TOLERANCE = dt.timedelta(days=1)

TNEF_TYPES = {"application/ms-tnef", "application/vnd.ms-tnef"}
CALENDAR_TYPES = {"text/calendar", "application/ics"}
MESSAGE_TYPES = {"message/rfc822", "message/global"}

Buffer = bytes | bytearray | mmap.mmap


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


# --- Charsets -------------------------------------------------------------------

# Labels mail clients read as a superset (as browsers do), and common misspellings.
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "unicode-1-1-utf-7": "utf-7",
    "x-user-defined": "latin-1",
    "utf8": "utf-8",
    "unicode": "utf-16",
}
# Text codecs that are no charset, or whose decoders are slow on hostile input.
_REFUSED_CODECS = {"punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined", "mbcs", "oem"}
_NOT_ASCII_COMPATIBLE = ("utf-16", "utf-32", "utf-7", "iso2022", "hz")
_SINGLE_BYTE = ("iso8859", "cp125", "cp874", "cp8", "koi8", "mac-", "ascii", "latin")


@functools.lru_cache(maxsize=256)
def _codec(label: str | None) -> str | None:
    """The Python codec for a declared charset label, or None if unknown or refused."""
    if not label:
        return None
    name = label.strip().strip("\"'").split("*", 1)[0].strip().lower()  # RFC 2231 language suffix
    name = _CHARSET_ALIASES.get(name, name)
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return None
    return None if codec in _REFUSED_CODECS else codec


def _detect(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a hard dependency, but never crash for it
        return None
    try:
        best = from_bytes(data[:65536]).best()
    except Exception:
        return None
    return _codec(best.encoding) if best is not None else None


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Declared charset, then UTF-8, then detection, then Latin-1 with replacement.

    A single-byte label on bytes that are valid UTF-8 is read as UTF-8 first:
    mislabelled UTF-8 is common, and Latin-1 text that happens to be valid
    UTF-8 is not.
    """
    codec = _codec(charset)
    if data.isascii() and (codec is None or not codec.startswith(_NOT_ASCII_COMPATIBLE)):
        return data.decode("ascii")
    if codec is None:
        candidates = ["utf-8"]
    elif codec.startswith(_SINGLE_BYTE):
        candidates = ["utf-8", codec]
    else:
        candidates = [codec, "utf-8"]
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except (UnicodeError, LookupError):
            continue
    western = _western(data)
    if western is not None:
        return western
    if len(data) >= 32:  # shorter samples detect as noise
        detected = _detect(data)
        if detected:
            try:
                return data.decode(detected, "replace")
            except (UnicodeError, LookupError):
                pass
    # Latin-1 as mail clients read it (windows-1252); undefined bytes replaced.
    return data.decode("cp1252", "replace")


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ASCII_LETTER = re.compile(r"[A-Za-z]")


def _western(data: bytes) -> str | None:
    """The text as windows-1252 if it reads like a Western language: a few accented letters among ASCII ones.

    Detectors guess wrong on short Western text (they pick Baltic or Central
    European code pages); text in other scripts has mostly non-ASCII letters.
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    sample = text[:65536]
    accented = len(_NON_ASCII.findall(sample))
    return text if accented <= 0.3 * (accented + len(_ASCII_LETTER.findall(sample))) else None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WS = re.compile(r"\s+")
_INVISIBLE = re.compile(
    r"[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
)


def _clean(text: str) -> str:
    """Text a database and a template accept: no NUL, no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _one_line(text: str, limit: int) -> str:
    text = _WS.sub(" ", _CONTROL.sub("", text)).strip()
    return text[: limit - 1] + "…" if len(text) > limit else text


# --- RFC 2047 encoded words -------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words as mail clients do.

    Whitespace between adjacent encoded words is dropped, and adjacent words
    in one charset are joined before decoding, so a character split across
    two words (a common encoder bug) survives.
    """
    if "=?" not in text:
        return text
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            out.append(decode_text(b"".join(pending), pending_charset))
            pending, pending_charset = [], ""

    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        if between and (not pending or between.strip()):
            flush()
            out.append(between)
        charset, kind, payload = match.groups()
        raw = payload.encode("ascii") if payload.isascii() else payload.encode("utf-8", "replace")
        data = _b64decode(raw) if kind in "bB" else binascii.a2b_qp(raw, header=True)
        if pending and charset.lower() != pending_charset.lower():
            flush()
        pending.append(data)
        pending_charset = charset
        pos = match.end()
    flush()
    out.append(text[pos:])
    return "".join(out)


# --- Transfer encodings -------------------------------------------------------------

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_JUNK = bytes(set(range(256)) - set(_B64_ALPHABET))


def _b64decode(data: bytes | memoryview, padding_inside: bool | None = None) -> bytes:
    """Base64 the lenient way: junk characters skipped, padding repaired, data after a '=' kept.

    ``padding_inside`` says whether base64 text follows a '=' (several encoded
    chunks glued together); binascii would stop at the first one.
    """
    if padding_inside is None:
        raw = bytes(data)
        first = raw.find(b"=")
        padding_inside = first >= 0 and bool(raw[first:].strip(b"=\r\n\t "))
    if not padding_inside:
        try:
            # pybase64 (SIMD) decodes as binascii does, junk skipped, ~10× faster on CRLF-wrapped text.
            return pybase64.b64decode(data, validate=False)
        except binascii.Error:
            pass
    chunks = []
    for piece in re.split(rb"=+", bytes(data).translate(None, _B64_JUNK.replace(b"=", b""))):
        if len(piece) % 4 == 1:
            piece = piece[:-1]
        if piece:
            chunks.append(binascii.a2b_base64(piece + b"=" * (-len(piece) % 4)))
    return b"".join(chunks)


def _uudecode(data: bytes) -> bytes:
    out = []
    in_body = False
    for line in data.splitlines():
        if not in_body:
            in_body = line.startswith(b"begin ")
            continue
        if line.strip() in (b"end", b"`"):
            break
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            # Some encoders write too many bytes per line; decode what the length byte says.
            nbytes = ((line[:1] or b" ")[0] - 32) & 63
            try:
                out.append(binascii.a2b_uu(line[: (nbytes * 4 + 5) // 3 + 1])[:nbytes])
            except binascii.Error:
                continue
    return b"".join(out)


# --- Headers --------------------------------------------------------------------------

_HEADER_LINES = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[ \t])[^\r\n]*(?:\r\n|\n|\r|\Z))*")
_BLANK_LINE = re.compile(rb"\r\n|\n|\r")
_MIME_HEADERS = ("content-type", "content-disposition", "content-transfer-encoding", "content-id")


class _Headers:
    """One entity's header fields: unfolded raw values by lower-case name."""

    __slots__ = ("_params", "fields", "mime", "truncated")

    def __init__(self, block: bytes, default_type: str = "text/plain", truncated: bool = False) -> None:
        self.fields: dict[str, list[bytes]] = {}
        self.truncated = truncated
        self._params: dict[str, dict[str, str]] = {}
        pieces: list[tuple[str, list[bytes]]] = []
        current: list[bytes] | None = None
        for line in block.splitlines():
            if line[:1] in (b" ", b"\t"):
                if current is not None:
                    current.append(line)  # unfolding: the line break goes, the white space stays
                continue
            key, sep, value = line.partition(b":")
            if not sep:
                current = None  # "From " envelope line or junk
                continue
            current = [value]
            pieces.append((key.strip().decode("latin-1").lower(), current))
        for name, chunks in pieces:
            self.fields.setdefault(name, []).append(b"".join(chunks))
        self.mime = email.message.Message()
        self.mime.set_default_type(default_type)
        self.load_mime()

    def load_mime(self) -> None:
        """Content-* parameters through the standard library (RFC 2045, RFC 2231)."""
        self._params = {}
        for name in _MIME_HEADERS:
            del self.mime[name]
            value = self.first(name)
            if value is not None:
                # Latin-1 keeps 8-bit bytes recoverable: the stdlib turns surrogates into U+FFFD.
                self.mime[name] = value.strip().decode("latin-1")

    def first(self, name: str) -> bytes | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def text(self, name: str, charset: str | None = None) -> str:
        value = self.first(name)
        return "" if value is None else header_text(value, charset)

    def content_type(self) -> str:
        try:
            return self.mime.get_content_type()
        except Exception:
            return "application/octet-stream"

    def params(self, header: str = "content-type") -> dict[str, str]:
        """A header's parameters, parsed once (RFC 2231 continuations and charsets applied)."""
        cached = self._params.get(header)
        if cached is None:
            cached = {}
            try:
                pairs = self.mime.get_params(header=header) or []
            except Exception:
                pairs = []
            for key, value in pairs[1:]:
                if isinstance(value, tuple):
                    value = _collapse_rfc2231(value)
                cached.setdefault(str(key).strip().lower(), str(value))
            self._params[header] = cached
        return cached

    def param(self, name: str, header: str = "content-type") -> str:
        return self.unlatin(self.params(header).get(name, ""), header).strip()

    def charset(self) -> str | None:
        return self.params().get("charset", "").strip().lower() or None

    def boundary(self) -> bytes | None:
        value = self.params().get("boundary", "").rstrip()
        return _boundary_bytes(value) if value else None

    def filename(self) -> str:
        return self.param("filename", "content-disposition") or self.param("name")

    def unlatin(self, value: str, header: str) -> str:
        """Undo the Latin-1 reading of raw 8-bit bytes in a MIME header (RFC 6532 UTF-8, or worse)."""
        raw = self.first(header)
        if raw is None or raw.isascii() or value.isascii():
            return value
        try:
            return decode_text(value.encode("latin-1"))
        except UnicodeEncodeError:  # already decoded (RFC 2231 with a charset)
            return value

    def disposition(self) -> str:
        try:
            return (self.mime.get_content_disposition() or "").strip()
        except Exception:
            return ""

    def transfer_encoding(self) -> str:
        value = self.first("content-transfer-encoding")
        return value.strip().lower().decode("latin-1") if value else ""

    def content_id(self) -> str:
        value = self.first("content-id")
        return _one_line(header_text(value), 255).strip("<> ") if value else ""


def _collapse_rfc2231(value: tuple) -> str:
    """An RFC 2231 (charset, language, text) value as text; a charset label Python rejects falls back to ours."""
    try:
        return email.utils.collapse_rfc2231_value(value)
    except Exception:  # e.g. a NUL in the charset label
        charset, text = str(value[0]), str(value[-1])
        return decode_text(text.encode("latin-1", "replace"), charset)


def header_text(value: bytes, charset: str | None = None) -> str:
    """An unstructured header value: 8-bit bytes (RFC 6532) and encoded words decoded."""
    text = decode_text(value, charset) if not value.isascii() else value.decode("ascii")
    return decode_words(text)


_WANTED_FIELD = re.compile(
    rb"^(subject|from|sender|reply-to|to|cc|date|message-id|in-reply-to|references|content-[a-z-]+"
    rb"|list-unsubscribe|list-unsubscribe-post|list-id)[ \t]*:"
    rb"([^\r\n]{0,65536}(?:(?:\r\n|\n|\r)[ \t][^\r\n]{0,65536}){0,100})",
    re.IGNORECASE | re.MULTILINE,
)


def _read_headers(buf: Buffer, start: int, end: int, default_type: str = "text/plain") -> tuple[_Headers, int]:
    """Parse the header block at ``start``; returns the headers and where the body starts.

    A block over MAX_HEADER_BYTES is cut there; past the cut only the fields
    webpop uses are picked out (a mail loop's 20,000 Received lines must not
    cost the Subject).
    """
    match = _HEADER_LINES.match(buf, start, end)
    header_end = match.end() if match else start
    truncated = header_end - start > MAX_HEADER_BYTES
    cut = start + MAX_HEADER_BYTES if truncated else header_end
    headers = _Headers(buf[start:cut], default_type, truncated)
    if truncated:
        line_start = max(buf.rfind(b"\n", start, cut), buf.rfind(b"\r", start, cut)) + 1
        for found in _WANTED_FIELD.finditer(buf, line_start or cut, header_end):
            name = found.group(1).decode("ascii").lower()
            if name not in headers.fields:
                headers.fields[name] = [re.sub(rb"\r\n|\n|\r", b"", found.group(2))]
        headers.load_mime()
    body_start = header_end
    blank = _BLANK_LINE.match(buf, header_end, end)
    if blank:
        body_start = blank.end()
    return headers, body_start


# --- Addresses, dates, ids ----------------------------------------------------------


_NAME_ADDR = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^"<>(),;:@\\]*?))\s*<([^<>\s@",;:]+@[^<>\s@",;:]+)>\s*')
_BARE_ADDR = re.compile(r'\s*([^\s<>"(),;:@\\]+@[^\s<>"(),;:@\\]+)\s*')


def _mailbox(item: str) -> tuple[str, str] | None:
    """(display name, address) for one mailbox, or None when it is not one."""
    simple = _NAME_ADDR.fullmatch(item) or _BARE_ADDR.fullmatch(item)
    if simple:  # the usual forms, without the standard library's slower general parser
        if simple.re is _BARE_ADDR:
            return "", simple.group(1)
        quoted, plain, addr = simple.groups()
        name = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else plain
        return _one_line(decode_words(name), 255), addr
    try:
        name, addr = email.utils.parseaddr(item)
    except Exception:
        return None
    if not addr or "@" not in addr or " " in addr:
        return None
    return _one_line(decode_words(name), 255), addr.strip()


Entry = tuple[str, tuple[str, str] | None]  # (text as written, (name, address) when it is a mailbox)


def parse_addresses(text: str) -> list[tuple[str, list[Entry]]]:
    """An address list as (group name, entries); group name "" for mailboxes outside a group.

    Commas, colons and semicolons count only outside quotes, comments and
    angle brackets; a malformed entry is kept as its text.
    """
    text = text[: MAX_FIELD_CHARS * 4]
    if not any(char in text for char in '"(:;\\'):  # the common case: no quotes, comments or groups
        entries = [(item.strip(), _mailbox(item)) for item in text.split(",") if item.strip()]
        return [("", entries)] if entries else []
    groups: list[tuple[str, list[Entry]]] = []
    group: tuple[str, list[Entry]] | None = None
    current: list[str] = []
    quoted = escaped = angle = False
    depth = 0

    def end_item() -> None:
        item = "".join(current).strip()
        current.clear()
        if not item:
            return
        entry = (item, _mailbox(item))
        if group is not None:
            group[1].append(entry)
        elif groups and groups[-1][0] == "":
            groups[-1][1].append(entry)
        else:
            groups.append(("", [entry]))

    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth:
            pass
        elif char == "<":
            angle = True
        elif char == ">":
            angle = False
        elif not angle and char == ",":
            end_item()
            continue
        elif not angle and char == ":" and group is None:
            name = "".join(current).strip().strip('"')
            current.clear()
            group = (_one_line(decode_words(name), 255), [])
            groups.append(group)
            continue
        elif not angle and char == ";" and group is not None:
            end_item()
            group = None
            continue
        current.append(char)
    end_item()
    return groups


def _entry_text(entry: Entry) -> str:
    text, pair = entry
    if pair is None:
        return _one_line(decode_words(text), 1000)
    return f"{pair[0]} <{pair[1]}>" if pair[0] else pair[1]


def _format_address_list(text: str) -> str:
    parts = []
    for name, entries in parse_addresses(text):
        members = ", ".join(_entry_text(entry) for entry in entries)
        parts.append(f"{name}: {members};" if name else members)
    return _one_line(", ".join(p for p in parts if p), MAX_FIELD_CHARS)


def _first_sender(text: str) -> tuple[str, str]:
    """(name, address) of the first mailbox; the whole text as the name when there is none."""
    for _group, entries in parse_addresses(text):
        for _text, pair in entries:
            if pair:
                return pair
    try:
        name, _addr = email.utils.parseaddr(text)
    except Exception:
        name = ""
    return _one_line(decode_words(name or text), 255), ""


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")


def parse_date(text: str) -> dt.datetime | None:
    """RFC 5322 dates and the broken forms seen in the wild, timezone-aware; None if hopeless."""
    text = text.strip()
    if not text:
        return None
    try:
        parts = email.utils.parsedate_tz(text)
    except Exception:
        parts = None
    if parts:
        try:
            offset = dt.timedelta(seconds=parts[9] or 0)
            tz = dt.timezone(offset) if abs(offset) < dt.timedelta(hours=24) else dt.UTC
            value = dt.datetime(*parts[:5], min(parts[5], 59), tzinfo=tz)
            if value.year >= 1900:
                return value
        except (ValueError, OverflowError, TypeError):
            pass
    match = _ISO_DATE.search(text)
    if match:
        try:
            value = dt.datetime.fromisoformat(match.group(0))
        except ValueError:
            return None
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None


_MSG_ID = re.compile(r"<[^<>\s]{1,900}>")


def _message_ids(text: str) -> list[str]:
    return _MSG_ID.findall(text)


# --- Bodies: HTML to text, format=flowed, calendars ---------------------------------

_SKIP_START = re.compile(r"<!--|<(script|style|head|title|template|xml)\b", re.IGNORECASE)
_SKIP_END = {
    name: re.compile(rf"</{name}\s*>", re.IGNORECASE)
    for name in ("script", "style", "head", "title", "template", "xml")
}
_BLOCK_TAG = re.compile(r"<(?:br|/?p|/?div|/t[rdh]|/li|/h[1-6]|/?table|/?blockquote|hr)\b[^<>]*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[/!?a-zA-Z][^<>]*>")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body, for snippets and search (not for display)."""
    text = (markup or "")[:HTML_TO_TEXT_INPUT_LIMIT]
    if "<" in text:
        text = _drop_invisible_blocks(text)
        text = _BLOCK_TAG.sub("\n", text)
        text = _ANY_TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def _drop_invisible_blocks(text: str) -> str:
    """Remove comments, scripts, styles and the head in linear time, whatever is unclosed."""
    out, pos = [], 0
    while True:
        match = _SKIP_START.search(text, pos)
        if not match:
            out.append(text[pos:])
            break
        out.append(text[pos : match.start()])
        if match.group(1) is None:  # comment
            end = text.find("-->", match.end())
            pos = len(text) if end < 0 else end + 3
            continue
        name = match.group(1).lower()
        close = _SKIP_END[name].search(text, match.end())
        if close:
            pos = close.end()
        elif name in ("script", "style", "xml"):  # unclosed: the rest is not text, as in a browser
            break
        else:
            pos = match.end()
    return "".join(out)


def unflow(text: str, delsp: bool = False) -> str:
    """Join the soft line breaks of format=flowed text (RFC 3676)."""
    out: list[str] = []
    joined: list[str] = []
    depth = 0
    for line in text.split("\n"):
        quote = len(line) - len(line.lstrip(">"))
        content = line[quote:]
        if content.startswith(" "):
            content = content[1:]
        # A change of quotation depth ends a paragraph, and so does the signature separator
        # (RFC 3676 4.3: it is never part of a flowed paragraph, even after a flowed line).
        if joined and (quote != depth or content == "-- "):
            out.append(">" * depth + (" " if depth else "") + "".join(joined))
            joined = []
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delsp:
            content = content[:-1]
        joined.append(content)
        depth = quote
        if not flowed:
            out.append(">" * depth + (" " if depth else "") + "".join(joined))
            joined = []
    if joined:
        out.append(">" * depth + (" " if depth else "") + "".join(joined))
    return "\n".join(out)


_ICAL_LINE = re.compile(r"^([A-Za-z-]+)((?:;[^:\r\n]*)?):(.*)$", re.MULTILINE)


ICAL_EVENT_FIELDS = ("SUMMARY", "DTSTART", "DTEND", "LOCATION", "ORGANIZER", "DESCRIPTION", "STATUS")


def calendar_events(text: str, limit: int = 20) -> tuple[str, list[dict[str, tuple[str, str]]]]:
    """The METHOD and up to ``limit`` VEVENTs of an iCalendar text: {NAME: (params, raw value)} each.

    Values are as written (escapes kept): ``ical_text`` unescapes them. The first
    occurrence of a property in an event wins.
    """
    text = re.sub(r"\r?\n[ \t]", "", text[:1_000_000])
    method, events, event, nested = "", [], None, 0
    for name, params, value in _ICAL_LINE.findall(text):
        name, component = name.upper(), value.strip().upper()
        if name == "METHOD":
            method = component
        elif name == "BEGIN" and component == "VEVENT":
            event, nested = {}, 0
        elif event is None:
            continue
        elif name == "BEGIN":  # a VALARM inside the event: its SUMMARY is not the event's
            nested += 1
        elif name == "END" and component != "VEVENT":
            nested = max(nested - 1, 0)
        elif name == "END":
            if event:
                events.append(event)
            event = None
            if len(events) >= limit:
                break
        elif not nested and name in ICAL_EVENT_FIELDS and name not in event:
            event[name] = (params, value.strip())
    return method, events


def calendar_summary(text: str) -> str:
    """A few human lines for an iCalendar invitation: what, when, where, who."""
    method, events = calendar_events(text, limit=1)
    if not events:
        return ""
    event = events[0]
    verb = {"REQUEST": "Invitation", "CANCEL": "Cancelled", "REPLY": "Reply", "COUNTER": "Counter-proposal"}.get(
        method, "Event"
    )
    lines = [f"{verb}: {ical_text(event.get('SUMMARY', ('', '(no title)'))[1])}"]
    if "DTSTART" in event:
        when = _ical_time(*event["DTSTART"])
        if "DTEND" in event:
            when += f" – {_ical_time(*event['DTEND'])}"
        lines.append(f"When: {when}")
    if "LOCATION" in event:
        lines.append(f"Where: {ical_text(event['LOCATION'][1])}")
    if "ORGANIZER" in event:
        params, value = event["ORGANIZER"]
        cn = re.search(r';CN=("?)([^;:"]*)\1', params, re.IGNORECASE)
        address = re.sub(r"^mailto:", "", value, flags=re.IGNORECASE)
        lines.append(f"Organizer: {cn.group(2)} <{address}>" if cn else f"Organizer: {address}")
    return _clean("\n".join(_one_line(line, 300) for line in lines))


def ical_text(value: str) -> str:
    return re.sub(r"\\([,;\\nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _ical_time(params: str, value: str) -> str:
    match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})\d{0,2}(Z)?)?", value.strip())
    if not match:
        return value.strip()
    year, month, day, hour, minute, utc = match.groups()
    text = f"{year}-{month}-{day}"
    if hour:
        text += f" {hour}:{minute}"
        tzid = re.search(r";TZID=(\"?)([^;:\"]*)\1", params, re.IGNORECASE)
        text += " UTC" if utc else f" ({tzid.group(2)})" if tzid else ""
    return text


# --- TNEF (winmail.dat) ---------------------------------------------------------------

_TNEF_SIGNATURE = 0x223E9F78
_ATT_RENDDATA, _ATT_TITLE, _ATT_DATA, _ATT_MAPI = 0x9002, 0x8010, 0x800F, 0x9005
_PR_DISPLAY_NAME, _PR_ATTACH_DATA, _PR_FILENAME, _PR_LONG_FILENAME, _PR_MIME_TAG = (
    0x3001,
    0x3701,
    0x3704,
    0x3707,
    0x370E,
)
_MAPI_FIXED = {0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000A: 4, 0x000B: 4, 0x0014: 8}
_MAPI_FIXED |= {0x0040: 8, 0x0048: 16, 0x0001: 4}
_MAPI_VARIABLE = {0x001E, 0x001F, 0x0102, 0x000D}


def tnef_files(data: bytes, limit: int = MAX_PARTS) -> list[tuple[str, str, bytes]]:
    """(filename, content type, bytes) of the files in a TNEF stream; [] if it holds none or is not TNEF."""
    if len(data) < 6 or struct.unpack_from("<I", data)[0] != _TNEF_SIGNATURE:
        return []
    files: list[dict] = []
    pos = 6
    while pos + 9 <= len(data) and len(files) <= limit:
        level = data[pos]
        attr, length = struct.unpack_from("<II", data, pos + 1)
        start, end = pos + 9, pos + 9 + length
        if end > len(data):
            break
        pos = end + 2  # checksum
        if level != 2:
            continue
        kind = attr & 0xFFFF
        if kind == _ATT_RENDDATA or not files:
            files.append({})
            if kind == _ATT_RENDDATA:
                continue
        current = files[-1]
        if kind == _ATT_TITLE:
            current.setdefault("title", data[start:end].split(b"\0", 1)[0].decode("cp1252", "replace"))
        elif kind == _ATT_DATA:
            current["data"] = data[start:end]
        elif kind == _ATT_MAPI:
            current.update(_mapi_props(data[start:end]))
    out = []
    for item in files:
        body = item.get("data", item.get("object"))
        if body is None:
            continue
        name = item.get("long") or item.get("short") or item.get("title") or item.get("display") or ""
        ctype = item.get("mime") or mimetypes.guess_type(name)[0] or "application/octet-stream"
        out.append((name, ctype, body))
    return out


def _mapi_props(data: bytes) -> dict:
    """The few attachment properties we use from a MAPI property block; stops quietly when malformed."""
    found: dict = {}
    try:
        (count,) = struct.unpack_from("<I", data)
        pos = 4
        for _ in range(min(count, 10_000)):
            ptype, pid = struct.unpack_from("<HH", data, pos)
            pos += 4
            if pid >= 0x8000:  # named property: GUID, kind, then id or name
                pos += 16
                (kind,) = struct.unpack_from("<I", data, pos)
                pos += 4
                if kind == 0:
                    pos += 4
                else:
                    (size,) = struct.unpack_from("<I", data, pos)
                    pos += 4 + size + (-size % 4)
            multi = bool(ptype & 0x1000)
            base = ptype & ~0x1000
            values = []
            if base in _MAPI_VARIABLE:
                (nvalues,) = struct.unpack_from("<I", data, pos)
                pos += 4
                for _ in range(min(nvalues, 10_000)):
                    (size,) = struct.unpack_from("<I", data, pos)
                    pos += 4
                    values.append(data[pos : pos + size])
                    pos += size + (-size % 4)
            elif base in _MAPI_FIXED:
                nvalues = struct.unpack_from("<I", data, pos)[0] if multi else 1
                pos += 4 if multi else 0
                width = _MAPI_FIXED[base]
                pos += nvalues * max(width, 4)
            else:
                break  # unknown type: its length is unknown, stop here
            if pos > len(data):
                break
            if not values:
                continue
            value = values[0]
            if base == 0x001F:
                text = value.decode("utf-16-le", "replace").split("\0", 1)[0]
            elif base == 0x001E:
                text = value.split(b"\0", 1)[0].decode("cp1252", "replace")
            else:
                text = None
            if pid == _PR_LONG_FILENAME and text:
                found["long"] = text
            elif pid == _PR_FILENAME and text:
                found["short"] = text
            elif pid == _PR_DISPLAY_NAME and text:
                found["display"] = text
            elif pid == _PR_MIME_TAG and text:
                found["mime"] = text.strip().lower()
            elif pid == _PR_ATTACH_DATA and base == 0x0102:
                found["object"] = value
    except struct.error:
        pass
    return found


# --- File names -----------------------------------------------------------------------

_DEFAULT_NAMES = {
    "message/rfc822": "message.eml",
    "message/global": "message.eml",
    "text/calendar": "invite.ics",
    "application/ics": "invite.ics",
    "application/pkcs7-signature": "smime.p7s",
    "application/x-pkcs7-signature": "smime.p7s",
    "application/pkcs7-mime": "smime.p7m",
    "application/x-pkcs7-mime": "smime.p7m",
    "application/pgp-signature": "signature.asc",
    "application/pgp-encrypted": "pgp-version.txt",
    "application/pgp-keys": "key.asc",
    "message/delivery-status": "delivery-status.txt",
    "message/disposition-notification": "disposition-notification.txt",
    "text/rfc822-headers": "headers.txt",
    "application/ms-tnef": "winmail.dat",
    "application/vnd.ms-tnef": "winmail.dat",
    "text/plain": "attachment.txt",
    "text/html": "attachment.html",
}


def clean_filename(name: str) -> str:
    """A file name safe to offer for download: no folders, no control characters, at most 255 characters."""
    if "=?" in name:
        name = decode_words(name)
    name = _clean(name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _WS.sub(" ", _CONTROL.sub("", name)).strip()
    if name in ("", ".", ".."):
        return ""
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = stem[: 254 - len(ext)] + "." + ext if dot and len(ext) < 20 else name[:255]
    return name


def _default_name(content_type: str, index: int) -> str:
    known = _DEFAULT_NAMES.get(content_type)
    if known:
        return known
    extension = mimetypes.guess_extension(content_type, strict=False) or ".bin"
    return f"attachment-{index}{extension}"


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
        if ctype in CALENDAR_TYPES:
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


def _raw_text(value: bytes, charset: str | None = None) -> str:
    """A structured header's text: 8-bit bytes decoded, encoded words left for the field parser."""
    return value.decode("ascii") if value.isascii() else decode_text(value, charset)


def _boundary_bytes(boundary: str) -> bytes:
    try:
        return boundary.encode("latin-1")  # the header's own bytes (see _Headers.load_mime)
    except UnicodeEncodeError:
        return boundary.encode("utf-8", "replace")


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


def _snippet(text: str) -> str:
    """The first SNIPPET_LENGTH visible characters, looking no further into the text than needed."""
    size = SNIPPET_LENGTH * 3
    while True:
        head = _WS.sub(" ", _INVISIBLE.sub("", text[:size])).strip()  # newsletters pad their preheader
        if len(head) >= SNIPPET_LENGTH or size >= len(text) or size > 100_000:
            return head[:SNIPPET_LENGTH]
        size *= 4


def _join_html(pieces: list[_Piece]) -> str:
    return "\n".join(p.html if p.html is not None else f"<pre>{html.escape(p.plain or '')}</pre>" for p in pieces)
