"""Streaming split of mbox files (mboxrd and mboxo) and reading of .eml files, in bounded memory.

The file is read in fixed-size binary chunks and walked line by line, in
pieces of at most ``PIECE`` bytes: time is linear in the size of the file and
memory is bounded by a constant whatever its lines (one 190 MB line costs what
190 MB of short lines cost). Only the first piece of a line decides what it
is; the rest of a long line streams through.

Each message goes to a sink with CRLF line endings (as a POP3 server sends
it) and the mboxrd ``>From`` quoting undone. The caller learns where each
message starts and ends in the file, so an interrupted import can resume at
a message boundary: ``split_mbox(fh, ..., start=span.end)`` after
``fh.seek(span.end)``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024  # one read
PIECE = 64 * 1024  # the most of a line held at once
FLUSH = 256 * 1024  # output gathered before it goes to the sink


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class Span:
    """One message of a file: where it is, and the sink that holds it (None when it had no content)."""

    start: int  # offset of its "From " line (0 for an .eml)
    end: int  # offset just past it: the next message's "From " line, or the end of the file
    sink: Sink | None


class Pieces:
    """The lines of a binary stream in pieces of at most ``PIECE`` bytes.

    A piece ending in LF ends its line; any other piece (but the last one of
    the stream) is followed by more of the same line. ``offset`` is the
    position in the file of the next piece. ``on_read(position)`` is called
    after each chunk read with how far the file has been read.
    """

    def __init__(self, fh: BinaryIO, offset: int = 0, on_read: Callable[[int], object] | None = None):
        self.fh, self.offset, self.on_read = fh, offset, on_read
        self._buf, self._pos, self._eof = b"", 0, False

    def next(self) -> bytes:
        """The next piece; empty at the end of the stream."""
        buf, pos = self._buf, self._pos
        end = buf.find(b"\n", pos, pos + PIECE)
        while end < 0 and len(buf) - pos < PIECE and not self._eof:
            more = self.fh.read(CHUNK)
            if not more:
                self._eof = True
                break
            buf, pos = buf[pos:] + more, 0  # what is carried over is less than a piece
            if self.on_read is not None:
                self.on_read(self.offset + len(buf))
            end = buf.find(b"\n", 0, PIECE)
        stop = end + 1 if end >= 0 else min(len(buf), pos + PIECE)
        piece = buf[pos:stop]
        self._buf, self._pos = buf, stop
        self.offset += len(piece)
        return piece

    def skip_line(self, piece: bytes) -> None:
        """Pass over the rest of the line ``piece`` began."""
        while piece and not piece.endswith(b"\n"):
            piece = self.next()


class _Out:
    """Gathers a message's bytes and hands them to its sink, made when there is something to write."""

    def __init__(self, new_sink: Callable[[int], Sink]):
        self.new_sink = new_sink
        self.start = 0
        self.sink: Sink | None = None
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)
        if self.size >= FLUSH:
            self.flush()

    def flush(self) -> None:
        if not self.size:
            return
        if self.sink is None:
            self.sink = self.new_sink(self.start)
        self.sink.write(b"".join(self.parts))
        self.parts, self.size = [], 0

    def finish(self, end: int) -> Span:
        self.flush()
        span = Span(self.start, end, self.sink)
        self.sink = None
        return span


def split_mbox(
    fh: BinaryIO,
    new_sink: Callable[[int], Sink],
    *,
    start: int = 0,
    on_read: Callable[[int], object] | None = None,
) -> Iterator[Span]:
    """The messages of an mbox file read from its position ``start`` (a message's "From " line, or 0).

    ``new_sink(start)`` makes the sink of the message starting at ``start``.
    A "From " line starts a message at the start of the file, after a blank
    line (which belongs to neither message) or right after another "From "
    line; text before the first one is no message. A message without any line
    is skipped; one whose lines were all blank comes with no sink.
    """
    lines = Pieces(fh, start, on_read)
    out = _Out(new_sink)
    current = False  # inside a message
    has_lines = False  # the current message has a line (a blank one counts)
    blank = False  # its last line was blank: held back, as it may precede a "From " line
    while True:
        offset = lines.offset
        piece = lines.next()
        if not piece:
            break
        if piece.startswith(b"From ") and (not current or not has_lines or blank):
            if current and has_lines:
                yield out.finish(offset)
            out.start, current, has_lines, blank = offset, True, False, False
            lines.skip_line(piece)
            continue
        if not current:
            lines.skip_line(piece)
            continue
        if blank:
            out.write(b"\r\n")
        has_lines = True
        blank = piece in (b"\n", b"\r\n")
        if blank:
            continue
        if piece[:1] == b">":
            piece, quoted = _drain(quoted_from(piece, lines), out.write)
            if quoted:
                piece = piece[1:]  # mboxrd: one ">" less
        for data in copy_line(piece, lines, terminate=True):
            out.write(data)
    if current and has_lines:
        yield out.finish(lines.offset)


def read_eml(fh: BinaryIO, new_sink: Callable[[int], Sink], *, on_read: Callable[[int], object] | None = None) -> Span:
    """A whole file as one message, with CRLF line endings (a last line without an end stays so)."""
    lines = Pieces(fh, 0, on_read)
    out = _Out(new_sink)
    while piece := lines.next():
        for data in copy_line(piece, lines, terminate=False):
            out.write(data)
    return out.finish(lines.offset)


def quoted_from(piece: bytes, lines: Pieces) -> Generator[bytes, None, tuple[bytes, bool]]:
    """For a line's first piece starting with ">": is the line ">…>From "?

    The run of ">" may be longer than a piece: all of it but one ">" is then
    yielded here (every ">" is the same byte, so which one a caller drops or
    adds does not matter). Returns the rest of the line's start, beginning
    with a ">", and the answer.
    """
    while True:
        run = len(piece) - len(piece.lstrip(b">"))
        if piece.endswith(b"\n") or len(piece) - run >= 5:
            break
        more = lines.next()
        if not more:
            break
        yield piece[: run - 1]
        piece = piece[run - 1 :] + more
    return piece, piece[run : run + 5] == b"From "


def copy_line(piece: bytes, lines: Pieces, *, terminate: bool, eol: bytes = b"\r\n") -> Iterator[bytes]:
    """The line ``piece`` begins, through its end, its LF or CRLF ending given as ``eol``.

    A CR at the end of one piece and the LF at the start of the next are one
    line end; any other CR stays. At the end of the stream a line without an
    end gets ``eol`` only when ``terminate``.
    """
    held_cr = False
    while True:
        if piece.endswith(b"\n"):
            if held_cr:
                if piece == b"\n":
                    yield eol
                    return
                yield b"\r"
            ending = b"\r\n" if piece.endswith(b"\r\n") else b"\n"
            if ending == eol:
                yield piece
            else:
                yield piece[: -len(ending)]
                yield eol
            return
        if held_cr:
            yield b"\r"
        held_cr = piece.endswith(b"\r")
        yield piece[:-1] if held_cr else piece
        piece = lines.next()
        if not piece:
            if held_cr:
                yield b"\r"
            if terminate:
                yield eol
            return


def _drain(steps: Generator[bytes, None, tuple[bytes, bool]], write: Callable[[bytes], object]) -> tuple[bytes, bool]:
    while True:
        try:
            write(next(steps))
        except StopIteration as done:
            return done.value
