"""What each part of an outgoing message may hold, and how typed or received text is made to fit.

A header is one line, and Python's ``email`` package refuses a header value that
``str.splitlines`` would split: at CR and LF, but also at \\x0b \\x0c \\x1c \\x1d
\\x1e \\x85 U+2028 and U+2029. Free text meant for a header (a subject, a name,
a file name) is therefore normalised: every control character (Unicode class
Cc) and line or paragraph separator (Zl, Zp) becomes a space, runs of white
space one space, and lone surrogates (Cs, which no encoding can write) U+FFFD.
Format characters (Cf: joiners, direction marks) stay: scripts and emoji need them.
Structured fields are checked instead (see ``compose``): an address with a
control character in it cannot be guessed right, and a message id from received
mail is used only when it is plain printable ASCII.
"""

from __future__ import annotations

import re

# Cc (C0, DEL, C1) plus Zl and Zp: everything that ends a line for str.splitlines, and more.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# RFC 5322 msg-id: "<" id-left "@" id-right ">" in printable ASCII, without brackets or white space.
# At most 250 characters: real ones are far shorter, and References must fold into lines of 998.
MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,250}>")
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits at


def storable(text: str) -> str:
    """Text any database and encoder accepts: without NUL, lone surrogates as U+FFFD."""
    text = text or ""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return _SURROGATE.sub("\ufffd", text)


def one_line(text: str) -> str:
    """Header text: controls and line breaks as spaces, white space collapsed, nothing at either end."""
    return " ".join(_CONTROL.sub(" ", _SURROGATE.sub("\ufffd", text or "")).split())


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character or line break other than a tab, or a lone surrogate."""
    return bool(_CONTROL.search((text or "").replace("\t", " ")) or _SURROGATE.search(text or ""))


def body(text: str) -> str:
    """Body text: LF line ends (CRLF and lone CR converted), no NUL, lone surrogates as U+FFFD.

    Other characters stay as typed: a body may hold form feeds or Unicode separators,
    and quoted-printable or base64 carries them.
    """
    return storable(text).replace("\r\n", "\n").replace("\r", "\n")


def message_ids(text: str) -> list[str]:
    """The well-formed message ids in ``text``, in order; anything else (from hostile mail too) is skipped."""
    return MESSAGE_ID.findall(text or "")
