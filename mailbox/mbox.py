"""mbox (mboxrd) export, streamed in bounded pieces, and splitting small mbox files.

Export escapes "From " lines the mboxrd way (any run of ">" before "From "
gets one more), so every message comes back byte for byte when read by an
mboxrd reader, and memory stays constant however large the folder or long
its lines (mailbox/mboxsplit.py reads them in pieces).
"""

from __future__ import annotations

import email.policy
import email.utils
import io
from collections.abc import Iterable, Iterator
from email.message import EmailMessage
from typing import BinaryIO

from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import damage, mboxsplit
from .models import Message


def from_line(message: Message) -> bytes:
    sender = (message.from_email or "MAILER-DAEMON").replace(" ", "") or "MAILER-DAEMON"
    stamp = message.date.strftime("%a %b %d %H:%M:%S %Y")
    return f"From {sender} {stamp}\n".encode("ascii", "replace")


def escaped(fh: BinaryIO) -> Iterator[bytes]:
    """The message with LF line ends and mboxrd quoting, in pieces of about 64 KiB however long its lines."""
    lines = mboxsplit.Pieces(fh)
    out = _Gather()
    while piece := lines.next():
        if piece.startswith(b"From "):
            out.write(b">")
        elif piece[:1] == b">":
            if out.size:
                yield out.take()
            piece, quoted = yield from mboxsplit.quoted_from(piece, lines)
            if quoted:
                out.write(b">")
        for data in mboxsplit.copy_line(piece, lines, terminate=True, eol=b"\n"):
            out.write(data)
            if out.size >= 64 * 1024:
                yield out.take()
    if out.size:
        yield out.take()


class _Gather:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts, self.size = [], 0
        return data


def export(messages: Iterable[Message], language: str | None = None) -> Iterator[bytes]:
    """Yield an mbox file of ``messages`` in pieces of at most about 64 KiB (plus small headers).

    A message whose stored original is damaged (missing, or not hashing to its name) is left out,
    never exported as if it were what was received; a last message, in ``language``, lists those
    left out, where a mail program that opens the file shows it.
    """
    damaged: list[Message] = []
    for message in messages:
        try:
            fh = damage.open_checked(message.raw_path, message.sha256)  # marks a damaged file
        except OSError:
            damaged.append(message)
            continue
        with fh:
            yield from_line(message)
            yield from escaped(fh)
            yield b"\n"
    if damaged:
        with translation.override(language):
            note = damaged_note(damaged)
        yield b"From MAILER-DAEMON " + timezone.now().strftime("%a %b %d %H:%M:%S %Y").encode() + b"\n"
        yield from escaped(io.BytesIO(note))
        yield b"\n"


def damaged_note(damaged: list[Message]) -> bytes:
    """The export's own last message: which messages it leaves out because their originals are damaged."""
    note = EmailMessage(policy=email.policy.SMTP)
    note["From"] = "webpop <MAILER-DAEMON@localhost>"
    note["Date"] = email.utils.formatdate(localtime=False)
    note["Message-ID"] = email.utils.make_msgid("export")
    count = len(damaged)
    note["Subject"] = ngettext(
        "Export incomplete: %(count)d message left out, its original is damaged",
        "Export incomplete: %(count)d messages left out, their originals are damaged",
        count,
    ) % {"count": count}
    lines = [
        _(
            "The stored files of these messages are missing or no longer match what was received, so this "
            "export leaves them out instead of writing damaged copies. The administrator can restore them "
            "from a backup or fetch them again from the mail server (manage.py verifystore --repair); "
            "export again afterwards."
        ),
        "",
    ]
    for message in damaged:
        when = message.date.strftime("%Y-%m-%d %H:%M") if message.date else ""
        lines.append(f"- {when}  {message.from_email or '?'}  {message.subject or _('(no subject)')}")
    note.set_content("\n".join(lines) + "\n")
    return note.as_bytes()


def split_mbox(fh: BinaryIO) -> Iterator[bytes]:
    """Messages of an mbox file (mboxrd or mboxo), with CRLF line endings, one at a time, each in memory.

    For small files; imports stream each message to a file (mailbox/importer.py).
    """
    for span in mboxsplit.split_mbox(fh, lambda _start: io.BytesIO()):
        yield span.sink.getvalue() if span.sink is not None else b""
