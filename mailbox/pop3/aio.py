"""The asyncio driver: many POP3 sessions in one thread, the same protocol logic as ``blocking``.

``AsyncPop3Client`` mirrors ``Pop3Client`` method for method (each a
coroutine; ``retr_many``/``top_many`` are async iterators). It runs the session
generators of ``session.py`` over an ``asyncio.Protocol`` that hands received
bytes straight to the session's reader (no second buffer), pauses the socket
when the reader falls behind, and upgrades to TLS with ``loop.start_tls``.
Addresses come from the network guard (resolved in the default executor, as
``getaddrinfo`` blocks), TLS is verified by default, and every read, write and
handshake has the same timeouts and session deadline as the blocking driver.

Files given to ``retr_to``/``retr_many`` are written synchronously from the
event loop: fine for the page cache and for checks, which fetch nothing.
"""

from __future__ import annotations

import asyncio
import functools
import io
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import BinaryIO, TypeVar

from . import tls
from .core import NEED_DATA, START_TLS, Capabilities, Emit, RetrResult, Steps
from .driver import Driver
from .errors import Pop3ConnectError, Pop3ProtocolError, Pop3ServerError, Pop3TimeoutError
from .sasl import ScramCache

HIGH_WATER = 1024 * 1024  # received but unread bytes before the socket is paused
T = TypeVar("T")


class _Stream(asyncio.Protocol):
    """Bytes in and out of one connection, with flow control both ways."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.closed = False
        self.error: BaseException | None = None
        self.paused_reading = False
        self.paused_writing = False
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > HIGH_WATER and not self.paused_reading and self.transport is not None:
            self.transport.pause_reading()
            self.paused_reading = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake_reader()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake_reader()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)

    async def read(self) -> bytes:
        """Everything received so far (waiting for something); b"" once the connection has ended."""
        while not self.chunks:
            if self.closed:
                return b""
            self._readable = self.loop.create_future()
            await self._readable
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.size = 0
        if self.paused_reading and self.transport is not None:
            self.paused_reading = False
            self.transport.resume_reading()
        return data

    async def drain(self) -> None:
        while self.paused_writing and not self.closed:
            self._writable = self.loop.create_future()
            await self._writable


class AsyncPop3Client(Driver):
    """One POP3 session on asyncio. ``async with`` it; ``await quit()`` commits DELEs.

    Leaving the block because of an exception closes the connection without
    QUIT, so the server rolls back any DELE of this session. Arguments as for
    ``blocking.Pop3Client``.
    """

    _stream: _Stream | None = None

    # Connection ------------------------------------------------------------

    async def __aenter__(self) -> AsyncPop3Client:
        await self.connect()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        self.close()

    async def connect(self) -> str:
        self._start_clock()
        loop = asyncio.get_running_loop()
        resolve = functools.partial(tls.resolve, self.host, self.port, allow_private=self.allow_private)
        addresses = await loop.run_in_executor(None, resolve)
        last_error: OSError | None = None
        for address in addresses:
            stream = _Stream(loop)
            try:
                async with asyncio.timeout(self._op_timeout()):
                    await loop.create_connection(lambda stream=stream: stream, address, self.port)
            except OSError as exc:  # TimeoutError included
                last_error = exc
                continue
            self._stream = stream
            break
        if self._stream is None:
            raise tls.connect_error(self.host, self.port, self.timeout, last_error) from None
        try:
            return await self._run(self.session.open(self.security))
        except BaseException:
            self.close()
            raise

    async def _start_tls(self) -> None:
        stream = self._connected()
        assert stream.transport is not None and self._tls_context is not None
        if stream.chunks:
            raise Pop3ProtocolError(f"{self.host} sent data after STLS before the TLS handshake.")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._op_timeout()):
                transport = await loop.start_tls(stream.transport, stream, self._tls_context, server_hostname=self.host)
        except (OSError, ssl.SSLError) as exc:
            raise self._tls_failed(exc) from None
        if transport is None:
            raise Pop3ConnectError(f"Connection to {self.host} failed during TLS.")
        stream.transport = transport
        self._tls_done(transport.get_extra_info("ssl_object"))

    def close(self) -> None:
        self._keep_tls_session()
        if self._stream is not None and self._stream.transport is not None:
            # At once, as the blocking driver's close: after QUIT's answer nothing is left to say, and
            # without QUIT the server is to roll back (no TLS close_notify: nobody waits for it).
            self._stream.transport.abort()
        self._stream = None
        self.session.reader.clear()

    # Running the session's steps -------------------------------------------------

    def _connected(self) -> _Stream:
        if self._stream is None:
            raise Pop3ProtocolError("not connected")
        return self._stream

    async def _do(self, op: object) -> None:
        if op is NEED_DATA:
            await self._fill()
        elif isinstance(op, bytes):
            await self._send_raw(op)
        elif op is START_TLS:
            await self._start_tls()
        else:
            raise AssertionError(f"unexpected step {op!r}")

    async def _run(self, steps: Steps[T]) -> T:
        self._connected()
        try:
            while True:
                await self._do(next(steps))
        except StopIteration as done:
            return done.value

    async def _iterate(self, steps: Steps[None]) -> AsyncIterator:
        self._connected()
        done = False
        try:
            for op in steps:
                if isinstance(op, Emit):
                    yield op.value
                else:
                    await self._do(op)
            done = True
        finally:
            if not done:
                self.session.broken = True  # answers still in flight: the session is out of step

    async def _send_raw(self, data: bytes) -> None:
        stream = self._connected()
        if stream.closed or stream.transport is None:
            raise Pop3ConnectError(f"Connection to {self.host} lost: {stream.error or 'closed'}.")
        stream.transport.write(data)
        try:
            async with asyncio.timeout(self._op_timeout()):
                await stream.drain()
        except TimeoutError:
            raise Pop3TimeoutError(f"{self.host} did not accept data within {self.timeout:g} s.") from None

    async def _fill(self) -> None:
        stream = self._connected()
        try:
            async with asyncio.timeout(self._op_timeout()):
                data = await stream.read()
        except TimeoutError:
            raise Pop3TimeoutError(f"{self.host} did not answer within {self.timeout:g} s.") from None
        if not data:
            error = stream.error
            if isinstance(error, ssl.SSLError):
                raise Pop3ProtocolError(f"TLS error from {self.host}: {error.reason or error}.")
            if error is not None:
                raise Pop3ConnectError(f"Connection to {self.host} lost: {error}.")
            raise Pop3ProtocolError(f"{self.host} closed the connection unexpectedly.")
        self.session.reader.feed(data)

    # Authentication ----------------------------------------------------------

    async def capa(self) -> Capabilities:
        return await self._run(self.session.capa())

    async def utf8(self) -> None:
        await self._run(self.session.utf8())

    async def login(
        self,
        username: str,
        password: str,
        *,
        allow_plaintext: bool = False,
        mechanism: str | None = None,
        scram_cache: ScramCache | None = None,
        then: Sequence[str] = (),
    ) -> str:
        steps = self.session.login(
            username, password, allow_plaintext=allow_plaintext, mechanism=mechanism, scram_cache=scram_cache,
            then=then,
        )  # fmt: skip
        return await self._run(steps)

    async def login_oauth(
        self,
        username: str,
        access_token: str,
        *,
        mechanism: str = "XOAUTH2",
        two_step: bool = False,
        allow_plaintext: bool = False,
    ) -> str:
        steps = self.session.login_oauth(
            username, access_token, mechanism=mechanism, two_step=two_step, allow_plaintext=allow_plaintext
        )
        return await self._run(steps)

    # Commands --------------------------------------------------------------

    async def ask(self, *commands: str) -> None:
        await self._run(self.session.ask(commands))

    async def stat(self) -> tuple[int, int]:
        return await self._run(self.session.stat())

    async def list(self) -> dict[int, int]:
        return await self._run(self.session.list())

    async def list_one(self, number: int) -> int:
        return await self._run(self.session.list_one(number))

    async def uidl(self) -> list[tuple[int, str]]:
        return await self._run(self.session.uidl())

    async def uidl_one(self, number: int) -> str:
        return await self._run(self.session.uidl_one(number))

    async def retr_to(self, number: int, out: BinaryIO) -> RetrResult:
        return await self._run(self.session.body(f"RETR {int(number)}", out))

    async def top_to(self, number: int, lines: int, out: BinaryIO) -> RetrResult:
        return await self._run(self.session.body(f"TOP {int(number)} {int(lines)}", out))

    async def top(self, number: int, lines: int = 0) -> bytes:
        out = io.BytesIO()
        await self.top_to(number, lines, out)
        return out.getvalue()

    def retr_many(
        self, numbers: Iterable[int], open_out: Callable[[int], BinaryIO]
    ) -> AsyncIterator[tuple[int, RetrResult | Pop3ServerError]]:
        return self._iterate(self.session.pipeline("RETR {}", numbers, open_out))

    def top_many(
        self, numbers: Iterable[int], lines: int, open_out: Callable[[int], BinaryIO]
    ) -> AsyncIterator[tuple[int, RetrResult | Pop3ServerError]]:
        return self._iterate(self.session.pipeline(f"TOP {{}} {int(lines)}", numbers, open_out))

    async def dele(self, number: int) -> None:
        await self._run(self.session.command(f"DELE {int(number)}"))

    async def dele_many(self, numbers: Iterable[int]) -> list[Pop3ServerError | None]:
        return await self._run(self.session.dele_many(numbers))

    async def rset(self) -> None:
        await self._run(self.session.command("RSET"))

    async def noop(self) -> None:
        await self._run(self.session.command("NOOP"))

    async def quit(self) -> None:
        """QUIT: the server commits DELEs now. Raises unless it confirms."""
        try:
            await self._run(self.session.quit())
        finally:
            self.close()
