"""A worker process asked to stop: long work ends at its next safe point, and is cut off after a grace period.

The Celery worker's main process takes SIGTERM as a warm shutdown: it takes no new tasks and waits for
the running ones. It passes the request on to its pool processes as ``NOTICE`` (webpop/celery.py), and
there a sync or a check reads ``requested()`` between messages and stops safely (mailbox/sync/). Work
that cannot notice, a read from a server that has gone silent, is cut off ``WEBPOP_SHUTDOWN_GRACE``
seconds after the request by closing its connection (``cut_off_after_grace``): every such path is one a
crash takes too, so cutting it off loses nothing (docs/design.md, invariant 1).

SIGTERM itself keeps its meaning in a pool process (Celery's cold shutdown: end now), hence a signal of
its own for "finish soon".
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator

from django.conf import settings

NOTICE = signal.SIGUSR2
WATCH_SECONDS = 0.25

_requested_at: float | None = None
_installed = False


class Stopping(Exception):
    """This process is shutting down: end the work at this safe point; the next poll goes on with it."""


def request() -> None:
    global _requested_at
    if _requested_at is None:
        _requested_at = time.monotonic()


def requested() -> bool:
    return _requested_at is not None


def install() -> None:
    """In a worker's pool process: take ``NOTICE`` as the request to stop."""
    global _installed
    signal.signal(NOTICE, lambda _signum, _frame: request())
    _installed = True


def grace() -> float:
    return float(settings.WEBPOP_SHUTDOWN_GRACE)


@contextlib.contextmanager
def cut_off_after_grace(abort: Callable[[], None]) -> Iterator[None]:
    """While the block runs, call ``abort`` (from another thread) once a stop was requested ``grace()`` s ago.

    ``abort`` must be safe to call from another thread while the block is blocked in I/O (shutting a
    socket down is). Outside a worker's pool process nothing ever requests a stop: no watcher runs.
    """
    if not _installed:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(WATCH_SECONDS):
            if _requested_at is not None and time.monotonic() - _requested_at >= grace():
                abort()
                return

    watcher = threading.Thread(target=watch, name="shutdown-grace", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
