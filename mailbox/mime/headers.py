"""Header blocks: fields unfolded by name, Content-* parameters, RFC 2047 encoded words.

Header semantics come from the standard library where it is right
(``email.message.Message`` for Content-Type parameters and RFC 2231); field
splitting and encoded words are done here, leniently and over bytes.
"""

from __future__ import annotations

import binascii
import email.message
import email.utils
import mmap
import re

from .charsets import _one_line, decode_text
from .transfer import _b64decode

# A larger header block is cut there (the rest of the message still parses).
MAX_HEADER_BYTES = 256 * 1024

Buffer = bytes | bytearray | mmap.mmap

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


# --- Header blocks --------------------------------------------------------------------------

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


def _raw_text(value: bytes, charset: str | None = None) -> str:
    """A structured header's text: 8-bit bytes decoded, encoded words left for the field parser."""
    return value.decode("ascii") if value.isascii() else decode_text(value, charset)


def _boundary_bytes(boundary: str) -> bytes:
    try:
        return boundary.encode("latin-1")  # the header's own bytes (see _Headers.load_mime)
    except UnicodeEncodeError:
        return boundary.encode("utf-8", "replace")
