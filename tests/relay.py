"""A loopback TCP relay that counts request/response turns and can add latency.

    with Relay(("127.0.0.1", dovecot.pop3s_port), delay=0.02) as relay:
        client = Pop3Client("localhost", relay.port, "ssl", ...)
        ...
    relay.turns  # how often the client had to wait for the server, all connections together

A turn is the client sending after having received something (or sending
first), and the server answering: a lock-step client makes one turn per
command, a pipelining one one per group of commands it sends together. What
the client sends that nothing answers (a TLS close_notify in reply to the
server's, as the connection ends) waits for nothing and is no turn; nor is an answer the server sends
after the client has closed its side (a QUIT sent on the way out, its answer not awaited). The relay
sees bytes, not POP3, so TLS is counted too: an implicit-TLS connection spends two turns on its
handshake (ClientHello; the client's Finished) before the first command. The
TCP handshake itself carries no data and is not counted; a real network adds
one round trip for it to every connection (``connections`` counts those).

``delay`` holds every chunk for that many seconds in each direction (in order),
as a network with a round-trip time of ``2 * delay`` would. ``rate`` (bytes a
second, each direction) is the link's bandwidth: a chunk leaves once the link
has serialised it, after the chunks before it, and ``delay`` after that, so
``Relay(target, delay=0.05, rate=100e6 / 8)`` is a 100 Mbit/s link with a 100 ms
round trip (chunks are at most 64 KB, smooth enough for a transfer of many
megabytes). ``hold()`` passes nothing on, as a server gone silent, until
``release()``. ``hide_capability`` removes one line from what the server sends
(``b"PIPELINING"``: a server that does not offer it); it works on clear-text
connections only, and expects the CAPA listing in one chunk, as servers send it.

Plain asyncio in a background thread (tests/aioserver.py), no Django.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field

from tests.aioserver import HOST, STOP_TIMEOUT, ThreadedServer


@dataclass
class Conversation:
    """One relayed connection: who sent what, in order, as turns."""

    turns: int = 0
    client_bytes: int = 0
    server_bytes: int = 0
    # ("C" | "S", bytes in that chunk) in the order the relay received them
    chunks: list[tuple[str, int]] = field(default_factory=list)
    client_closed: bool = False
    _last: str = ""

    def seen(self, direction: str, size: int) -> None:
        if direction == "C":
            self.client_bytes += size
        else:
            if self._last == "C" and not self.client_closed:
                self.turns += 1  # the client's last send got its answer
            self.server_bytes += size
        self._last = direction
        self.chunks.append((direction, size))


class Relay(ThreadedServer):
    """Listens on 127.0.0.1 (free port); each connection is relayed to ``target``."""

    name = "relay"

    def __init__(self, target: tuple[str, int], *, delay: float = 0.0, rate: float = 0.0, hide_capability: bytes = b""):
        super().__init__(HOST)
        self.target = target
        self.delay = delay
        self.rate = rate
        self.held = False
        self.hide = b"\r\n" + hide_capability + b"\r\n" if hide_capability else b""
        self.conversations: list[Conversation] = []
        self._lock = threading.Lock()

    # Counting ---------------------------------------------------------------

    @property
    def connections(self) -> int:
        return len(self.conversations)

    @property
    def turns(self) -> int:
        with self._lock:
            return sum(c.turns for c in self.conversations)

    def reset(self) -> None:
        """Forget what was counted so far (connections still open keep counting into their own records)."""
        with self._lock:
            self.conversations = []

    def wait_closed(self, timeout: float = STOP_TIMEOUT) -> None:
        """Until every relayed connection has ended, so the counts are final."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def hold(self) -> None:
        """Pass nothing on in either direction (connections stay open) until ``release()``."""
        self.held = True

    def release(self) -> None:
        self.held = False

    # Relaying ---------------------------------------------------------------

    async def serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        conversation = Conversation()
        with self._lock:
            self.conversations.append(conversation)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(
                self._pump(client_reader, server_writer, "C", conversation),
                self._pump(server_reader, client_writer, "S", conversation),
            )
        except (asyncio.CancelledError, OSError):
            pass
        finally:
            for writer in (client_writer, server_writer):
                with contextlib.suppress(Exception):
                    writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str, conversation: Conversation
    ) -> None:
        """Copy one direction; each chunk leaves ``delay`` seconds after the link has serialised it, in order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        link_free = 0.0  # when the link has serialised what is queued in this direction (with a rate)

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                while self.held:
                    await asyncio.sleep(0.05)
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except OSError:
                    data = b""
                now = time.monotonic()
                if data:
                    with self._lock:
                        conversation.seen(direction, len(data))
                    if self.hide and direction == "S":
                        data = data.replace(self.hide, b"\r\n")
                    if self.rate:
                        link_free = max(now, link_free) + len(data) / self.rate
                queue.put_nowait((max(now, link_free) + self.delay, data))
                if not data:
                    if direction == "C":
                        with self._lock:
                            conversation.client_closed = True
                    break
            await sender
        finally:
            sender.cancel()
