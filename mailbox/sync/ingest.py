"""Parsing and storing retrieved messages, and committing their rows, beside the session's reading.

The session parses and stores each batch itself; a writer thread commits the
rows of one batch while the session reads and parses the next, so the
database's work overlaps the network and the parsing.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import connection as db_connection
from django.db import transaction

if TYPE_CHECKING:
    from .session import Session


@dataclass
class Retrieved:
    """A retrieved message, verified and in the store (not yet durable, no row yet)."""

    uidl: str
    relpath: str
    size: int
    sha256: str


@dataclass
class PreparedBatch:
    fresh: list
    attachments: list
    aliases: list
    later_copies: dict
    count: int
    files: set  # written for this batch, made durable before its rows are committed


@dataclass
class Written:
    fetched: int = 0
    bytes: int = 0
    skipped: int = 0


class Ingest:
    """Parses and stores batches on the session's thread and commits their rows on a writer thread.

    Batches are committed in order. At most one prepared batch waits for the
    writer while the next is parsed, so memory and the files not yet committed
    stay bounded. ``finish()`` waits for all of them and re-raises a writer
    error: nothing may be DELE'd before it returns. Inside an open transaction
    (a test, or a caller's atomic block) a second connection could not see
    its rows, so batches are then committed inline.
    """

    def __init__(self, session: Session):
        self.session = session
        session.written = Written()
        session.stored_keys = {}
        self.inline = transaction.get_connection().in_atomic_block
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.finished = False

    def submit(self, batch: list[Retrieved]) -> None:
        if self.error is not None:
            raise self.error
        job = self.session.prepare_batch(batch)
        if self.inline:
            self.session.commit_batch(job)
            return
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="webpop-batch-writer", daemon=True)
            self.thread.start()
        self.queue.put(job)

    def _run(self) -> None:
        try:
            while (job := self.queue.get()) is not None:
                if self.error is None:
                    try:
                        self.session.commit_batch(job)
                    except BaseException as exc:
                        self.error = exc
        finally:
            db_connection.close()

    def finish(self) -> None:
        self._join()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """On the way out after an error: wait for what was queued (it is safe to commit)."""
        self._join()

    def _join(self) -> None:
        if self.thread is not None and not self.finished:
            self.finished = True
            self.queue.put(None)
            self.thread.join()
        written, result = self.session.written, self.session.result
        result.fetched += written.fetched
        result.bytes += written.bytes
        result.skipped += written.skipped
        self.session.written = Written()
