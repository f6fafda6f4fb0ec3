"""The blocking driver: one POP3 session on a ``socket`` (what ingest uses).

It runs the session generators of ``session.py`` over a socket reached through
the network guard, with a timeout per read or write and an optional deadline
for the whole session. Message bodies stream from the receive buffer into the
caller's file, so memory stays constant. It never sends QUIT on its own after
an error, so the server rolls back the session's DELEs.
"""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO, TypeVar

from webpop.lib import netguard

from . import tls
from .core import NEED_DATA, START_TLS, Capabilities, Emit, RetrResult, Steps, encode_command
from .driver import Driver
from .errors import Pop3ConnectError, Pop3ProtocolError, Pop3ServerError, Pop3TimeoutError
from .sasl import ScramCache

RECV_SIZE = 256 * 1024
T = TypeVar("T")


class Pop3Client(Driver):
    """One POP3 session. Use as a context manager; ``quit()`` commits DELEs.

    Leaving the ``with`` block because of an exception closes the connection
    without QUIT, so the server rolls back any DELE of this session.

    ``profile``: what an earlier session learned (``client.profile`` after a
    login); when fresh, no CAPA is sent. ``pipelining=False`` never pipelines,
    whatever the server offers.
    """

    _sock: socket.socket | None = None

    # Connection ------------------------------------------------------------

    def __enter__(self) -> Pop3Client:
        self.connect()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def connect(self) -> str:
        self._start_clock()
        addresses = tls.resolve(self.host, self.port, allow_private=self.allow_private)
        try:
            sock = netguard.connect_first(addresses, self.port, timeout=self._op_timeout())
        except OSError as exc:
            raise tls.connect_error(self.host, self.port, self.timeout, exc) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        try:
            return self._run(self.session.open(self.security))
        except BaseException:
            self.close()
            raise

    def _start_tls(self) -> None:
        assert self._sock is not None and self._tls_context is not None
        try:
            self._sock.settimeout(self._op_timeout())
            self._sock = self._tls_context.wrap_socket(self._sock, server_hostname=self.host)
        except (OSError, ssl.SSLError) as exc:
            raise self._tls_failed(exc) from None
        self._tls_done(self._sock)

    def close(self) -> None:
        self._keep_tls_session()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self.session.reader.clear()

    def abort(self) -> None:
        """Cut the connection off from another thread: a read or write in progress fails at once.

        The socket is shut down, not closed (its descriptor stays valid for the thread using it, which
        then closes it); for TLS, below the TLS layer, so nothing waits for the server. No QUIT, so the
        server deletes nothing of this session.
        """
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    # Running the session's steps -------------------------------------------------

    def _connected(self) -> socket.socket:
        if self._sock is None:
            raise Pop3ProtocolError("not connected")
        return self._sock

    def _do(self, op: object) -> None:
        if op is NEED_DATA:
            self._fill()
        elif isinstance(op, bytes):
            self._send_raw(op)
        elif op is START_TLS:
            self._start_tls()
        else:
            raise AssertionError(f"unexpected step {op!r}")

    def _run(self, steps: Steps[T]) -> T:
        self._connected()
        try:
            while True:
                self._do(next(steps))
        except StopIteration as done:
            return done.value

    def _iterate(self, steps: Steps[None]) -> Iterator:
        """Run ``steps``, handing each emitted value to the caller as it comes."""
        self._connected()
        done = False
        try:
            for op in steps:
                if isinstance(op, Emit):
                    yield op.value
                else:
                    self._do(op)
            done = True
        finally:
            if not done:
                self.session.broken = True  # answers still in flight: the session is out of step

    def _send_raw(self, data: bytes) -> None:
        sock = self._connected()
        try:
            sock.settimeout(self._op_timeout())
            sock.sendall(data)
        except TimeoutError:
            raise Pop3TimeoutError(f"{self.host} did not accept data within {self.timeout:g} s.") from None
        except OSError as exc:
            raise Pop3ConnectError(f"Connection to {self.host} lost: {exc}.") from None

    def _send(self, line: str) -> None:
        self._send_raw(encode_command(line))

    def _fill(self) -> None:
        """Feed the next bytes from the socket to the session's reader."""
        sock = self._connected()
        try:
            sock.settimeout(self._op_timeout())
            data = sock.recv(RECV_SIZE)
        except TimeoutError:
            raise Pop3TimeoutError(f"{self.host} did not answer within {self.timeout:g} s.") from None
        except ssl.SSLError as exc:
            raise Pop3ProtocolError(f"TLS error from {self.host}: {exc.reason or exc}.") from None
        except OSError as exc:
            raise Pop3ConnectError(f"Connection to {self.host} lost: {exc}.") from None
        if not data:
            raise Pop3ProtocolError(f"{self.host} closed the connection unexpectedly.")
        self.session.reader.feed(data)

    # Authentication ----------------------------------------------------------

    def capa(self) -> Capabilities:
        return self._run(self.session.capa())

    def utf8(self) -> None:
        """Enable UTF-8 mode (RFC 6856) when offered; must come before login to affect it."""
        self._run(self.session.utf8())

    def login(
        self,
        username: str,
        password: str,
        *,
        allow_plaintext: bool = False,
        mechanism: str | None = None,
        scram_cache: ScramCache | None = None,
        then: Sequence[str] = (),
    ) -> str:
        """One try with ``mechanism`` or the best one offered (see ``sasl.RANKING_TLS``); returns the mechanism.

        ``then``: commands (CAPA, STAT, UIDL, LIST, QUIT) sent behind the login's
        last line when the server pipelines; ``stat()``, ``uidl()``... then
        return their answers without another round trip.
        """
        steps = self.session.login(
            username, password, allow_plaintext=allow_plaintext, mechanism=mechanism, scram_cache=scram_cache,
            then=then,
        )  # fmt: skip
        return self._run(steps)

    def login_oauth(
        self,
        username: str,
        access_token: str,
        *,
        mechanism: str = "XOAUTH2",
        two_step: bool = False,
        allow_plaintext: bool = False,
    ) -> str:
        """SASL XOAUTH2 (Google, Microsoft; two-step for Outlook) or OAUTHBEARER (RFC 7628)."""
        steps = self.session.login_oauth(
            username, access_token, mechanism=mechanism, two_step=two_step, allow_plaintext=allow_plaintext
        )
        return self._run(steps)

    # Commands --------------------------------------------------------------

    def ask(self, *commands: str) -> None:
        """Send CAPA, STAT, UIDL, LIST (QUIT last) together when the server pipelines; ``stat()``,
        ``uidl()``... then answer from what came back."""
        self._run(self.session.ask(commands))

    def stat(self) -> tuple[int, int]:
        return self._run(self.session.stat())

    def list(self) -> dict[int, int]:
        return self._run(self.session.list())

    def list_one(self, number: int) -> int:
        return self._run(self.session.list_one(number))

    def uidl(self) -> list[tuple[int, str]]:
        """``[(message number, unique id), ...]`` in server order, duplicates included."""
        return self._run(self.session.uidl())

    def uidl_one(self, number: int) -> str:
        return self._run(self.session.uidl_one(number))

    def retr_to(self, number: int, out: BinaryIO) -> RetrResult:
        """RETR ``number`` into ``out``, undoing dot-stuffing, hashing as it goes.

        Memory stays constant whatever the message or line length. If the
        connection ends before the terminating dot, ``Pop3ProtocolError`` is
        raised and what was written must be discarded.
        """
        return self._run(self.session.body(f"RETR {int(number)}", out))

    def top_to(self, number: int, lines: int, out: BinaryIO) -> RetrResult:
        return self._run(self.session.body(f"TOP {int(number)} {int(lines)}", out))

    def top(self, number: int, lines: int = 0) -> bytes:
        out = io.BytesIO()
        self.top_to(number, lines, out)
        return out.getvalue()

    def retr_many(
        self, numbers: Iterable[int], open_out: Callable[[int], BinaryIO]
    ) -> Iterator[tuple[int, RetrResult | Pop3ServerError]]:
        """RETR each number, pipelined when the server offers PIPELINING.

        Yields ``(number, RetrResult)`` in order, or ``(number, error)`` when the
        server answers -ERR for that one message. Connection-level failures
        raise. Abandoning the iterator mid-way leaves responses in flight, so
        the session is then unusable (and no QUIT will be sent).
        """
        return self._iterate(self.session.pipeline("RETR {}", numbers, open_out))

    def top_many(
        self, numbers: Iterable[int], lines: int, open_out: Callable[[int], BinaryIO]
    ) -> Iterator[tuple[int, RetrResult | Pop3ServerError]]:
        return self._iterate(self.session.pipeline(f"TOP {{}} {int(lines)}", numbers, open_out))

    def dele(self, number: int) -> None:
        self._run(self.session.command(f"DELE {int(number)}"))

    def dele_many(self, numbers: Iterable[int]) -> list[Pop3ServerError | None]:
        """DELE each number (pipelined when offered); one entry per number, None when accepted."""
        return self._run(self.session.dele_many(numbers))

    def rset(self) -> None:
        self._run(self.session.command("RSET"))

    def noop(self) -> None:
        self._run(self.session.command("NOOP"))

    def quit(self) -> None:
        """QUIT: the server commits DELEs now. Raises unless it confirms."""
        try:
            self._run(self.session.quit())  # no round trip when QUIT went along with the login
        finally:
            self.close()

    def leave(self) -> None:
        """QUIT sent, its answer not awaited, then close: for a session that deleted nothing."""
        try:
            self._run(self.session.leave())
        except (Pop3ConnectError, Pop3TimeoutError):
            pass  # the connection is going anyway, and there was nothing to commit
        finally:
            self.close()
