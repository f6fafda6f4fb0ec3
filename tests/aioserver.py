"""A TCP server on asyncio, served from a background thread: what the test servers (relay, fault server) share.

A subclass writes ``async def serve(reader, writer)`` for one connection; this class listens on a free
port, runs the loop in a daemon thread, tracks the open connections and, on ``stop``, stops listening,
cancels them and joins the thread. Plain asyncio, no Django.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading

HOST = "127.0.0.1"
START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0


class ThreadedServer:
    name = "server"  # in the thread's name and the start error

    def __init__(self, host: str = HOST, *, ssl_context: ssl.SSLContext | None = None, limit: int | None = None):
        self.host = host
        self.port = 0
        self.ssl_context = ssl_context
        self._limit = limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()  # the connections being served
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self):
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._start_error is not None:
            raise RuntimeError(f"{self.name} did not start") from self._start_error
        return self

    def stop(self) -> None:
        """Stop listening, cancel every open connection and join the thread."""
        if self._thread is None or self._loop is None or self._loop.is_closed():
            return
        if self._server is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(STOP_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        options = {"ssl": self.ssl_context} if self.ssl_context is not None else {}
        if self._limit is not None:
            options["limit"] = self._limit
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, self.host, 0, **options))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.serve(reader, writer)
        finally:
            self._tasks.discard(task)
