"""Both POP3 drivers behind the blocking driver's interface, so one test runs against each.

``AsyncDriven`` runs an ``AsyncPop3Client`` on an event loop of its own, one
coroutine per call: every method, property and exception is the async
driver's own. A test module switches drivers with the ``pop3_driver`` fixture
below, which replaces its module-level ``Pop3Client`` name:

    from tests.pop3_drivers import pop3_driver  # noqa: F401 (a fixture)
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Iterator

import pytest

from mailbox.pop3 import Pop3Client
from mailbox.pop3.aio import AsyncPop3Client


class AsyncDriven:
    """An ``AsyncPop3Client`` with blocking calls (for tests written against ``Pop3Client``)."""

    def __init__(self, *args, **kwargs):
        self._runner: asyncio.Runner | None = None
        self.client = AsyncPop3Client(*args, **kwargs)

    def _run(self, coroutine):
        """Run on this client's loop; the loop ends with the connection (a new one starts if needed)."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        try:
            return self._runner.run(coroutine)
        finally:
            if self.client._stream is None:
                self._end_loop()

    def _end_loop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            runner.run(asyncio.sleep(0))  # let the transport finish closing
            runner.close()

    def __getattr__(self, name: str):
        value = getattr(self.client, name)
        if inspect.iscoroutinefunction(value):
            return lambda *args, **kwargs: self._run(value(*args, **kwargs))
        return value

    def __enter__(self) -> AsyncDriven:
        self._run(self.client.connect())
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()
        self._end_loop()

    def _blocking(self, iterator) -> Iterator:
        try:
            while True:
                try:
                    yield self._run(anext(iterator))
                except StopAsyncIteration:
                    return
        finally:
            if self._runner is not None:
                self._runner.run(iterator.aclose())

    def retr_many(self, numbers, open_out) -> Iterator:
        return self._blocking(self.client.retr_many(numbers, open_out))

    def top_many(self, numbers, lines, open_out) -> Iterator:
        return self._blocking(self.client.top_many(numbers, lines, open_out))


DRIVERS = {"blocking": Pop3Client, "asyncio": AsyncDriven}


@pytest.fixture(params=sorted(DRIVERS), autouse=True)
def pop3_driver(request, monkeypatch) -> str:
    """Every test of the module that imports this fixture runs once per driver."""
    module = sys.modules[request.module.__name__]
    monkeypatch.setattr(module, "Pop3Client", DRIVERS[request.param])
    return request.param
