"""The POP3 wire protocol without I/O: commands out, responses in (RFC 1939, 2449).

Nothing here touches a socket, a clock or a file. A driver (``blocking.py``,
``aio.py``) feeds what it received into a :class:`ResponseReader` and asks for
complete responses; ``None`` means "feed me more". Message bodies are un-dot-
stuffed and hashed as they arrive and handed to a ``write`` callable slice by
slice, so memory stays constant whatever the message or line length.

The session logic (``session.py``) is written as generators that yield
:data:`Op` values to their driver: bytes to send, :data:`NEED_DATA`,
:data:`START_TLS`, or an :class:`Emit` carrying a result to hand to the caller
before the exchange is over (each message of a pipelined RETR).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from .errors import Pop3ProtocolError, server_error

# Status and listing lines longer than this are a protocol error; message
# lines are unbounded (they are streamed, never held whole).
MAX_STATUS_LINE: Final = 64 * 1024
MAX_LISTING_LINES: Final = 10_000_000
DOT: Final = 0x2E
LF: Final = 0x0A

Write = Callable[[memoryview], object]


# --- Ops a session yields to its driver ----------------------------------------------


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA: Final = _Marker("NEED_DATA")  # read from the connection and feed the reader, then resume
START_TLS: Final = _Marker("START_TLS")  # do the TLS handshake now (the reader is empty), then resume


@dataclass(frozen=True, slots=True)
class Emit:
    """A result for the caller while the exchange goes on (one message of a pipeline)."""

    value: Any


Op = bytes | _Marker | Emit
T = TypeVar("T")
Steps = Generator[Op, None, T]


def encode_command(line: str) -> bytes:
    """One command line on the wire; arguments can never smuggle in a second command."""
    if "\r" in line or "\n" in line or "\0" in line:
        raise ValueError("POP3 command arguments may not contain CR, LF or NUL")
    return line.encode("utf-8") + b"\r\n"


# --- Results ----------------------------------------------------------------------------


@dataclass
class Capabilities:
    """CAPA (RFC 2449), typed. Empty when the server has no CAPA."""

    raw: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Capabilities:
        raw: dict[str, list[str]] = {}
        for line in lines:
            words = line.split()
            if words:
                raw[words[0].upper()] = words[1:]
        return cls(raw)

    def lines(self) -> list[str]:
        """The capability lines again (``parse(lines())`` is this object)."""
        return [" ".join([name, *args]) for name, args in self.raw.items()]

    def __contains__(self, name: str) -> bool:
        return name.upper() in self.raw

    def _int_arg(self, name: str) -> int | None:
        args = self.raw.get(name)
        if args:
            with contextlib.suppress(ValueError):
                return int(args[0])
        return None

    @property
    def stls(self) -> bool:
        return "STLS" in self.raw

    @property
    def uidl(self) -> bool:
        return "UIDL" in self.raw

    @property
    def top(self) -> bool:
        return "TOP" in self.raw

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.raw

    @property
    def user(self) -> bool:
        return "USER" in self.raw

    @property
    def resp_codes(self) -> bool:
        return "RESP-CODES" in self.raw

    @property
    def auth_resp_code(self) -> bool:
        return "AUTH-RESP-CODE" in self.raw

    @property
    def utf8(self) -> bool:
        return "UTF8" in self.raw

    @property
    def sasl(self) -> list[str]:
        return [m.upper() for m in self.raw.get("SASL", [])]

    @property
    def login_delay(self) -> int | None:
        """Minimum seconds between logins the server asks for (LOGIN-DELAY)."""
        return self._int_arg("LOGIN-DELAY")

    @property
    def expire(self) -> int | None:
        """Days the server keeps retrieved mail (EXPIRE n); None if NEVER or not said."""
        return self._int_arg("EXPIRE")

    @property
    def expire_never(self) -> bool:
        args = self.raw.get("EXPIRE")
        return bool(args) and args[0].upper() == "NEVER"

    @property
    def implementation(self) -> str | None:
        args = self.raw.get("IMPLEMENTATION")
        return " ".join(args) if args else None


@dataclass(frozen=True)
class RetrResult:
    size: int
    sha256: str


def parse_stat(line: str, host: str) -> tuple[int, int]:
    parts = line.split()
    try:
        return int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        raise Pop3ProtocolError(f"Bad STAT answer from {host}.") from None


def parse_list(lines: list[str], host: str) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for line in lines:
        parts = line.split()
        try:
            sizes[int(parts[0])] = int(parts[1])
        except (IndexError, ValueError):
            raise Pop3ProtocolError(f"Bad LIST line from {host}: {line[:100]!r}") from None
    return sizes


def parse_uidl(lines: list[str], host: str) -> list[tuple[int, str]]:
    """``[(message number, unique id), ...]`` in server order, duplicates included."""
    result: list[tuple[int, str]] = []
    for line in lines:
        parts = line.split()
        try:
            result.append((int(parts[0]), parts[1]))
        except (IndexError, ValueError):
            raise Pop3ProtocolError(f"Bad UIDL line from {host}: {line[:100]!r}") from None
    return result


# --- Reading responses ----------------------------------------------------------------------


@dataclass(slots=True)
class BodyState:
    """A multi-line body in progress: where its bytes go, and what has passed so far."""

    write: Write
    digest: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    at_line_start: bool = True


class ResponseReader:
    """Bytes from the server in (``feed``), whole responses out; ``None`` means more bytes are needed."""

    def __init__(self, host: str = "the server"):
        self.host = host
        self._buf = b""
        self._pos = 0
        self._listing: list[str] = []

    def feed(self, data: bytes) -> None:
        """Append received bytes to what is still unread."""
        if self._pos < len(self._buf):
            self._buf = self._buf[self._pos :] + data
        else:
            self._buf = data
        self._pos = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read."""
        return len(self._buf) - self._pos

    def clear(self) -> None:
        self._buf, self._pos = b"", 0
        self._listing = []

    def line(self, limit: int = MAX_STATUS_LINE) -> bytes | None:
        """The next line with its ending, or None; longer than ``limit`` is a protocol error."""
        end = self._buf.find(b"\n", self._pos)
        if end >= 0:
            if end - self._pos >= limit:
                raise Pop3ProtocolError(f"{self.host} sent an overlong line.")
            line = self._buf[self._pos : end + 1]
            self._pos = end + 1
            return line
        if len(self._buf) - self._pos >= limit:
            raise Pop3ProtocolError(f"{self.host} sent an overlong line.")
        return None

    def text_line(self) -> str | None:
        """The next status line as text, without its ending."""
        raw = self.line()
        return None if raw is None else raw.rstrip(b"\r\n").decode("utf-8", "replace")

    def status(self, *, during_login: bool = False) -> str | None:
        """The next ``+OK`` line; a ``-ERR`` raises the exception its response code calls for."""
        line = self.text_line()
        if line is None or line.startswith("+OK"):
            return line
        if line.startswith("-ERR"):
            raise server_error(line, during_login=during_login)
        raise Pop3ProtocolError(f"{self.host} sent an unexpected reply: {line[:200]!r}", response=line)

    def listing(self) -> list[str] | None:
        """The lines of a multi-line response up to its terminating dot, un-dot-stuffed."""
        lines = self._listing
        while True:
            raw = self.line()
            if raw is None:
                return None
            raw = raw.rstrip(b"\r\n")
            if raw == b".":
                self._listing = []
                return lines
            if raw.startswith(b"."):
                raw = raw[1:]
            lines.append(raw.decode("utf-8", "replace"))
            if len(lines) > MAX_LISTING_LINES:
                raise Pop3ProtocolError(f"{self.host} sent an endless listing.")

    def body(self, state: BodyState) -> RetrResult | None:
        """Pass what has arrived of a multi-line body to ``state.write``; the result once its dot came.

        Scans for ``\\n.`` with ``bytes.find`` instead of looping per line:
        dot-stuffed lines are rare, so most of a message is written in large
        slices. Line endings are kept exactly as sent (CRLF or bare LF). The
        slices are views of the receive buffer, valid only during the call.
        """
        buf, pos, end = self._buf, self._pos, len(self._buf)
        write, update = state.write, state.digest.update
        at_line_start = state.at_line_start
        try:
            while pos < end:
                if at_line_start and buf[pos] == DOT:
                    # Need ".\r\n" or ".\n" to tell the terminator from a stuffed dot.
                    if end - pos < 2 or (end - pos < 3 and buf[pos + 1] != LF):
                        return None
                    if buf[pos + 1] == LF or buf[pos + 1 : pos + 3] == b"\r\n":
                        pos += 2 if buf[pos + 1] == LF else 3
                        return RetrResult(size=state.size, sha256=state.digest.hexdigest())
                    pos += 1  # a stuffed dot: drop it
                hit = buf.find(b"\n.", pos)
                stop = end if hit < 0 else hit + 1
                if stop > pos:
                    chunk = memoryview(buf)[pos:stop]
                    write(chunk)
                    update(chunk)
                    state.size += stop - pos
                    at_line_start = buf[stop - 1] == LF
                pos = stop
            return None
        finally:
            self._pos = pos
            state.at_line_start = at_line_start
