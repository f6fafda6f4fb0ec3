"""tests/relay.py's Relay with a bandwidth limit: a link of ``rate`` bytes/s each way plus ``delay`` of propagation.

Each chunk leaves when the link has serialised it (after the chunks before it)
and ``delay`` has passed: a 100 Mbit/s, 100 ms round-trip network is
``ShapedRelay(target, delay=0.05, rate=100e6 / 8)``. Chunks are at most 64 KB,
so the shaping is smooth enough for a transfer of many megabytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from tests.relay import Relay


class ShapedRelay(Relay):
    def __init__(self, target: tuple[str, int], *, delay: float, rate: float):
        super().__init__(target, delay=delay)
        self.rate = rate

    async def _pump(self, reader, writer, direction, conversation) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        link_free = 0.0  # when the link has sent what is queued in this direction

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
                    link_free = max(now, link_free) + len(data) / self.rate
                queue.put_nowait((max(now, link_free) + self.delay, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()
