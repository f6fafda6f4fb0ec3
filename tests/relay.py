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

``delay`` holds every chunk, and a connection's end, for that many seconds in
each direction (in order), as a network with a round-trip time of ``2 * delay``
would. ``rate`` (bytes a second, each direction) is the link's bandwidth: a chunk
leaves once the link has serialised it, after the chunks before it, and ``delay``
after that, so ``Relay(target, delay=0.05, rate=100e6 / 8)`` is a 100 Mbit/s link
with a 100 ms round trip (chunks are at most 64 KB, smooth enough for a transfer
of many megabytes). ``hold()`` passes nothing on, as a server gone silent, until
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
from collections import deque
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
        loop = asyncio.get_running_loop()
        link = _Link(self, conversation, loop)
        # Callbacks instead of streams: a chunk costs one call and, with a delay, one timer per direction,
        # no tasks. The swap is made before the first await, so the stream has not read anything yet.
        client = client_writer.transport
        client.set_protocol(_Side(link, "C"))
        link.attach("C", client)
        try:
            try:
                await loop.create_connection(lambda: _Side(link, "S"), *self.target)
            except OSError:
                return
            await link.done
        except asyncio.CancelledError:
            pass
        finally:
            link.close()

    def _leaves(self, lane: _Lane, now: float, size: int) -> float:
        """When a chunk of ``size`` bytes received ``now`` is due to leave: serialised, then delayed."""
        if self.rate:
            lane.link_free = max(now, lane.link_free) + size / self.rate
            return lane.link_free + self.delay
        return now + self.delay


CHUNK = 65536  # the most passed on at once: with a ``rate``, what is serialised at a time


@dataclass
class _Lane:
    """One direction of a relayed connection: the chunks waiting for their time to leave, in order."""

    chunks: deque[tuple[float, bytes]] = field(default_factory=deque)  # (due, data); b"": the end
    timer: asyncio.TimerHandle | None = None
    paused: bool = False  # the receiving side's send buffer is full
    ended: bool = False  # the sender sent its last byte
    finished: bool = False  # the end was passed on, or the receiving side is gone
    link_free: float = 0.0  # with a ``rate``: when the link has serialised what is queued


class _Link:
    """Both directions of one relayed connection; every callback runs on the relay's event loop."""

    def __init__(self, relay: Relay, conversation: Conversation, loop: asyncio.AbstractEventLoop):
        self.relay = relay
        self.conversation = conversation
        self.loop = loop
        self.transports: dict[str, asyncio.Transport] = {}  # "C": the client's socket, "S": the server's
        self.lanes = {"C": _Lane(), "S": _Lane()}  # by who sent the bytes
        self.done: asyncio.Future[None] = loop.create_future()

    def attach(self, side: str, transport: asyncio.Transport) -> None:
        self.transports[side] = transport
        self._flush(_OTHER[side])  # what waited for this side to be connected

    def received(self, direction: str, data: bytes) -> None:
        relay = self.relay
        for start in range(0, len(data), CHUNK):
            chunk = data[start : start + CHUNK] if len(data) > CHUNK else data
            with relay._lock:
                self.conversation.seen(direction, len(chunk))
            if relay.hide and direction == "S":
                chunk = chunk.replace(relay.hide, b"\r\n")
            self._queue(direction, chunk)

    def ended(self, direction: str) -> None:
        """Nothing more comes from ``direction``'s sender: the end is passed on after what came before it."""
        lane = self.lanes[direction]
        if lane.ended:
            return
        lane.ended = True
        if direction == "C":
            with self.relay._lock:
                self.conversation.client_closed = True
        self._queue(direction, b"")

    def lost(self, side: str) -> None:
        """``side``'s socket is closed: it sends nothing more and what was on the way to it is dropped."""
        self.ended(side)
        into = self.lanes[_OTHER[side]]
        into.chunks.clear()
        self._finish(into)

    def _queue(self, direction: str, data: bytes) -> None:
        lane = self.lanes[direction]
        if lane.finished:
            return
        lane.chunks.append((self.relay._leaves(lane, self.loop.time(), len(data)), data))
        if len(lane.chunks) == 1 and lane.timer is None:
            self._flush(direction)

    def _flush(self, direction: str) -> None:
        """Pass on every chunk that is due, in order; a timer for the next one."""
        lane = self.lanes[direction]
        lane.timer = None
        destination = self.transports.get(_OTHER[direction])
        relay, loop = self.relay, self.loop
        while lane.chunks and not lane.paused and destination is not None:
            due, data = lane.chunks[0]
            now = loop.time()
            leaves = due
            if leaves <= now and relay.held:
                leaves = now + 0.05  # look again then
            if leaves > now:
                lane.timer = loop.call_at(leaves, self._flush, direction)
                return
            lane.chunks.popleft()
            if not data:
                with contextlib.suppress(OSError):
                    destination.write_eof()
                self._finish(lane)
                return
            destination.write(data)

    def pause(self, side: str) -> None:
        self.lanes[_OTHER[side]].paused = True

    def resume(self, side: str) -> None:
        lane = self.lanes[_OTHER[side]]
        lane.paused = False
        if lane.timer is None:
            self._flush(_OTHER[side])

    def _finish(self, lane: _Lane) -> None:
        lane.finished = True
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        if all(one.finished for one in self.lanes.values()) and not self.done.done():
            self.done.set_result(None)

    def close(self) -> None:
        for lane in self.lanes.values():
            if lane.timer is not None:
                lane.timer.cancel()
        for transport in self.transports.values():
            with contextlib.suppress(Exception):
                transport.close()


_OTHER = {"C": "S", "S": "C"}


class _Side(asyncio.Protocol):
    """One socket of a relayed connection: the client's ("C") or the server's ("S")."""

    def __init__(self, link: _Link, side: str):
        self.link = link
        self.side = side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.side == "S":  # the client's socket is attached by serve()
            assert isinstance(transport, asyncio.Transport)
            self.link.attach("S", transport)

    def data_received(self, data: bytes) -> None:
        self.link.received(self.side, data)

    def eof_received(self) -> bool:
        self.link.ended(self.side)
        return True  # half-closed: what the other side still sends is passed on

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(self.side)

    def pause_writing(self) -> None:
        self.link.pause(self.side)

    def resume_writing(self) -> None:
        self.link.resume(self.side)
