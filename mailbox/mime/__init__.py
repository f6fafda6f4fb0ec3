"""Parse a raw RFC 5322 message into what webpop stores and shows.

Parsing never raises for bad input: a missing or unreadable header comes out
empty (the UI shows its placeholder, the date falls back to the receiving
server's stamp or the time of receipt) and every body part is decoded
leniently. The raw message is stored byte-exact elsewhere, so nothing is lost
whatever this package makes of it; limits (MAX_*) bound the work, and a message
beyond them carries a ``parse_notice``.

One module per concern: ``walker`` (the entry points and the walk over the
MIME tree), ``headers`` (header blocks, RFC 2047), ``addresses`` (address
lists, dates, message ids), ``charsets``, ``transfer`` (transfer encodings),
``text`` (HTML to text, format=flowed), ``calendars``, ``tnef`` and
``filenames``. The names other modules use are re-exported here; a test that
patches a bound (``MAX_PARTS`` ...) patches the module that reads it.
"""

from .addresses import MAX_FIELD_CHARS, Entry, parse_addresses, parse_date
from .calendars import calendar_summary
from .charsets import decode_text
from .filenames import clean_filename
from .headers import MAX_HEADER_BYTES, decode_words, header_text
from .text import html_to_text, unflow
from .tnef import tnef_files
from .transfer import _b64decode
from .walker import (
    CALENDAR_TYPES,
    MAX_DEPTH,
    MAX_PARTS,
    MAX_TEXT_BYTES,
    MESSAGE_TYPES,
    TNEF_TYPES,
    ParsedAttachment,
    ParsedMessage,
    parse,
    parse_bytes,
    parse_file,
)

__all__ = [
    "CALENDAR_TYPES",
    "MAX_DEPTH",
    "MAX_FIELD_CHARS",
    "MAX_HEADER_BYTES",
    "MAX_PARTS",
    "MAX_TEXT_BYTES",
    "MESSAGE_TYPES",
    "TNEF_TYPES",
    "Entry",
    "ParsedAttachment",
    "ParsedMessage",
    "_b64decode",
    "calendar_summary",
    "clean_filename",
    "decode_text",
    "decode_words",
    "header_text",
    "html_to_text",
    "parse",
    "parse_addresses",
    "parse_bytes",
    "parse_date",
    "parse_file",
    "tnef_files",
    "unflow",
]
