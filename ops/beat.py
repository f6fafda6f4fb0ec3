"""Celery beat scheduler that enqueues only while it holds the beat lease (ops/beatlock.py).

Start as many beats as you like (by mistake, or a standby for failover): the
one holding the lease sends; the others tick on standby and send nothing.
"""

from __future__ import annotations

import logging
import threading

from celery.beat import PersistentScheduler
from django import db
from django.conf import settings

log = logging.getLogger(__name__)
RELEASE_TIMEOUT = 10.0  # seconds beat waits, when stopping, for the database to take its lease back


class GuardedScheduler(PersistentScheduler):
    def __init__(self, *args, **kwargs):
        from django.apps import apps

        if not apps.ready:  # setup() again would reconfigure logging under beat's redirected stderr
            import django

            django.setup()
        from . import beatlock

        self._lock = beatlock
        self.holder = beatlock.holder_id()
        self.lease_seconds = settings.WEBPOP_BEAT_LEASE_SECONDS
        self.leading: bool | None = None  # unknown until the first tick: log either way
        super().__init__(*args, **kwargs)

    def _hold(self) -> bool:
        try:
            db.close_old_connections()
            held = self._lock.hold(self.holder, self.lease_seconds)
        except db.Error:
            log.exception("beat could not reach the database; sending nothing until it can")
            db.close_old_connections()
            held = False
        if held != self.leading:
            if held:
                log.info("beat %s holds the beat lease: enqueueing periodic tasks", self.holder)
            else:
                log.warning("beat %s is on standby: another beat holds the lease", self.holder)
            self.leading = held
        return held

    def tick(self, *args, **kwargs) -> float:
        # Renew well before the lease lapses, even when no task is due for longer.
        renew_every = self.lease_seconds / 3
        if not self._hold():
            return renew_every
        return min(super().tick(*args, **kwargs), renew_every)

    def close(self) -> None:
        try:
            if self.leading:
                self._release()
                self.leading = False
        finally:
            super().close()

    def _release(self) -> None:
        """Give the lease up now, so that a standby takes over at its next tick rather than when it lapses.

        Beat closes the scheduler from its SIGTERM handler, which can run in the middle of one of the
        ticks' queries. That query holds this thread's database connection, and a second query on it
        from the handler would wait for it forever; so the release runs in a thread of its own, on that
        thread's own connection, for a bounded time.
        """

        def release() -> None:
            try:
                self._lock.release(self.holder)
            except db.Error:
                log.exception("beat could not release its lease; it lapses by itself")
            finally:
                db.connection.close()

        releasing = threading.Thread(target=release, name="beat-lease-release", daemon=True)
        releasing.start()
        releasing.join(RELEASE_TIMEOUT)
        if releasing.is_alive():
            log.warning("beat gave up releasing its lease after %s s; it lapses by itself", RELEASE_TIMEOUT)
