"""mbox (mboxrd) export, streamed one line at a time, and import of .eml / .mbox files.

Export escapes "From " lines the mboxrd way (any run of ">" before "From "
gets one more), so every message comes back byte for byte when read by an
mboxrd reader, and memory stays constant however large the folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from . import store
from .models import Message

_FROM_LINE = re.compile(rb"^>*From ")


def from_line(message: Message) -> bytes:
    sender = (message.from_email or "MAILER-DAEMON").replace(" ", "") or "MAILER-DAEMON"
    stamp = message.date.strftime("%a %b %d %H:%M:%S %Y")
    return f"From {sender} {stamp}\n".encode("ascii", "replace")


def message_lines(fh: BinaryIO) -> Iterator[bytes]:
    """The message's lines with LF endings and mboxrd quoting."""
    last = b"\n"
    for line in fh:
        if line.endswith(b"\r\n"):
            line = line[:-2] + b"\n"
        if _FROM_LINE.match(line):
            line = b">" + line
        last = line
        yield line
    if not last.endswith(b"\n"):
        yield b"\n"


def export(messages: Iterable[Message]) -> Iterator[bytes]:
    """Yield an mbox file of ``messages`` in pieces of at most a line (plus small headers)."""
    for message in messages:
        try:
            fh = store.open_file(message.raw_path)
        except OSError:
            continue  # a tombstone or a file the operator removed: nothing to export
        with fh:
            yield from_line(message)
            buffer: list[bytes] = []
            size = 0
            for line in message_lines(fh):
                buffer.append(line)
                size += len(line)
                if size >= 64 * 1024:
                    yield b"".join(buffer)
                    buffer, size = [], 0
            buffer.append(b"\n")
            yield b"".join(buffer)


def split_mbox(fh: BinaryIO) -> Iterator[bytes]:
    """Messages of an mbox file (mboxrd or mboxo), with CRLF line endings, one at a time."""
    current: list[bytes] | None = None
    for line in fh:
        if line.startswith(b"From ") and (current is None or not current or current[-1] in (b"\n", b"\r\n")):
            if current:
                yield _finish(current)
            current = []
            continue
        if current is None:
            continue  # text before the first "From " line is not a message
        if _FROM_LINE.match(line) and line.startswith(b">"):
            line = line[1:]
        current.append(line)
    if current:
        yield _finish(current)


def _finish(lines: list[bytes]) -> bytes:
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]  # the blank line that separates messages
    out = []
    for line in lines:
        if line.endswith(b"\r\n"):
            out.append(line)
        elif line.endswith(b"\n"):
            out.append(line[:-1] + b"\r\n")
        else:
            out.append(line + b"\r\n")
    return b"".join(out)
