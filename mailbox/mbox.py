"""mbox (mboxrd) export, streamed in bounded pieces, and splitting small mbox files.

Export escapes "From " lines the mboxrd way (any run of ">" before "From "
gets one more), so every message comes back byte for byte when read by an
mboxrd reader, and memory stays constant however large the folder or long
its lines (mailbox/mboxsplit.py reads them in pieces).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from . import mboxsplit, store
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


def export(messages: Iterable[Message]) -> Iterator[bytes]:
    """Yield an mbox file of ``messages`` in pieces of at most about 64 KiB (plus small headers)."""
    for message in messages:
        try:
            fh = store.open_file(message.raw_path)
        except OSError:
            continue  # a tombstone or a file the operator removed: nothing to export
        with fh:
            yield from_line(message)
            yield from escaped(fh)
            yield b"\n"


def split_mbox(fh: BinaryIO) -> Iterator[bytes]:
    """Messages of an mbox file (mboxrd or mboxo), with CRLF line endings, one at a time, each in memory.

    For small files; imports stream each message to a file (mailbox/importer.py).
    """
    for span in mboxsplit.split_mbox(fh, lambda _start: io.BytesIO()):
        yield span.sink.getvalue() if span.sink is not None else b""
