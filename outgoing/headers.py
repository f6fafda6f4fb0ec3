"""Subject and address headers of outgoing mail, encoded and folded here rather than by ``email``.

Python's header folder (3.11, policy.SMTP) breaks two ways when it splits a
non-ASCII header into encoded words: the space between two words at the split
is lost ("встреча привет" arrives as "встречапривет"), and a comma between
mailboxes can end up inside an encoded word, which hides every later recipient
from the reader. So text that is not plain ASCII goes whole into UTF-8 encoded
words (``email.header.Header``, which may split them anywhere: white space
between encoded words means nothing, RFC 2047 6.2), plain text is folded at its
own spaces, and an address list is folded only after the comma between mailboxes.

The results are complete folded values for ``Message.set_raw`` with
``refold_source="none"``: ASCII, no line longer than 78 characters except one
holding a long address.
"""

from __future__ import annotations

import re
from email.header import Header
from email.utils import formataddr

MAX_LINE = 78
_PRINTABLE = re.compile(r"[ -~]*")  # printable ASCII and space
NAME_ROOM = 60  # a display name longer than this is encoded, so that it can be folded


def _plain(value: str, room: int) -> bool:
    """Whether ``value`` can be written as it is: printable ASCII, nothing a reader would decode, words that fit."""
    return bool(_PRINTABLE.fullmatch(value)) and "=?" not in value and all(len(w) <= room for w in value.split(" "))


def _encoded(value: str, name: str = "") -> str:
    return Header(value, "utf-8", maxlinelen=MAX_LINE - 2, header_name=name or None).encode(linesep="\r\n")


def unstructured(name: str, value: str) -> str:
    """The folded value of an unstructured header such as Subject (``value`` is one line already)."""
    if not _plain(value, MAX_LINE - len(name) - 2):
        return _encoded(value, name)
    lines: list[str] = []
    line = ""
    used = len(name) + 2  # "Subject: " on the first line
    for word in value.split(" "):
        if line and used + len(line) + 1 + len(word) > MAX_LINE:
            lines.append(line)
            line, used = word, 1  # a continuation line starts with the space that was there
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


def mailbox(display_name: str, address: str) -> str:
    """``Name <address>``: the name as it is (quoted when it must be) or in encoded words."""
    if not display_name:
        return address
    if len(display_name) <= NAME_ROOM and _plain(display_name, NAME_ROOM):
        return formataddr((display_name, address))
    return f"{_encoded(display_name)} <{address}>"


def address_list(name: str, mailboxes: list[tuple[str, str]]) -> str:
    """The folded value of an address header (To, Cc, Bcc): mailboxes side by side while they fit a line."""
    pieces: list[str] = []
    used = len(name) + 2  # the current line's length so far
    for n, (display_name, address) in enumerate(mailboxes):
        part = mailbox(display_name, address)
        segments = part.split("\r\n")
        if n and used + 2 + len(segments[0]) > MAX_LINE:
            pieces.append(",\r\n ")
            used = 1
        elif n:
            pieces.append(", ")
            used += 2
        pieces.append(part)
        used = used + len(segments[0]) if len(segments) == 1 else len(segments[-1])
    return "".join(pieces)
