"""Parsing and storing retrieved messages, and committing their rows, beside the session's reading.

A large download is parsed and stored in a forked child process while the
session keeps reading from the server (:class:`ForkedIngest`): parsing and
storing cost more CPU than the network, and a second core then does them.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, NoReturn

from django.db import connection as db_connection
from django.db import connections as db_connections
from django.db import transaction

from .. import store
from . import crash
from .outcome import SyncResult

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)


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


class _BatchWriter:
    """Commits prepared batches on a second thread while the session keeps reading.

    The database's work then overlaps the network and parsing. Batches are
    committed in order; ``finish()`` waits for all of them and re-raises a
    writer error. Inside an open transaction (a test, or a caller's atomic
    block) a second connection could not see its rows, so batches are then
    committed inline.
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

    def submit(self, job: PreparedBatch) -> None:
        if self.error is not None:
            raise self.error
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


class LocalIngest:
    """Parse and store batches in this process (files here, rows on the writer thread)."""

    def __init__(self, session: Session):
        self.session = session
        self.writer = _BatchWriter(session)

    def submit(self, batch: list[Retrieved]) -> None:
        self.writer.submit(self.session.prepare_batch(batch))

    def finish(self) -> None:
        self.writer.finish()

    def abandon(self) -> None:
        self.writer.abandon()


class IngestProcessError(Exception):
    """The ingest child failed or died: what it acknowledged as committed stands, nothing else.

    ``errno`` is the child's error number when an OS error stopped it (a full disk, say).
    """

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


class ForkedIngest:
    """Parse and store batches in a forked child while this process keeps reading from the server.

    The child runs a :class:`LocalIngest` on its own database connection and
    acknowledges each batch; at most ``MAX_UNACKED`` batches are outstanding,
    so temp files and memory stay bounded. ``finish()`` returns only when the
    child reports every batch committed: nothing may be DELE'd before that.
    The child dies with this process (``PR_SET_PDEATHSIG``), so a killed
    worker leaves no orphan writing behind it.
    """

    MAX_UNACKED = 2

    def __init__(self, session: Session):
        self.session = session
        self.unacked = 0
        self.finished = False
        # The child must not share this process's database socket: both reconnect.
        db_connections.close_all()
        parent_pid = os.getpid()
        self.conn, child_conn = multiprocessing.Pipe()
        pid = os.fork()
        if pid == 0:
            self.conn.close()
            _ingest_child(session, child_conn, parent_pid)
        child_conn.close()
        self.pid = pid

    def submit(self, batch: list[Retrieved]) -> None:
        while self.unacked >= self.MAX_UNACKED:
            self._receive()
        try:
            self.conn.send([astuple(item) for item in batch])
        except OSError:
            self._receive()  # the child is gone: report why
            raise IngestProcessError("the ingest process stopped reading") from None
        self.unacked += 1

    def _receive(self) -> dict | None:
        try:
            kind, payload = self.conn.recv()
        except (EOFError, OSError):
            raise IngestProcessError("the ingest process died") from None
        if kind == "error":
            message, errno = payload
            raise IngestProcessError(message, errno)
        if kind == "ack":
            self.unacked -= 1
            return None
        return payload

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            with contextlib.suppress(OSError):  # the child is gone: _receive says why
                self.conn.send(None)
            while (done := self._receive()) is None:
                pass
        finally:
            self._reap()
        result = self.session.result
        result.fetched += done["fetched"]
        result.bytes += done["bytes"]
        result.skipped += done["skipped"]
        result.ingest_peak_rss_kb = done["peak_rss_kb"]

    def abandon(self) -> None:
        """On the way out after an error: let the child commit what it has (safe), then reap it."""
        if self.finished:
            return
        try:
            self.finish()
        except IngestProcessError as exc:
            log.warning("ingest process account=%s: %s", self.session.account.id, exc)

    def _reap(self) -> None:
        self.conn.close()
        os.waitpid(self.pid, 0)


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # it died before the line above took effect
        os._exit(1)


def _ingest_child(session: Session, conn, parent_pid: int) -> NoReturn:
    """The body of a :class:`ForkedIngest` child: never returns."""
    code = 0
    try:
        crash.in_ingest_child(parent_pid)
        _die_with_parent(parent_pid)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)  # not the worker's handlers
        session.result = SyncResult(account=session.account.id)  # counts of this child only
        ingest = LocalIngest(session)
        try:
            while (items := conn.recv()) is not None:
                ingest.submit([Retrieved(*item) for item in items])
                conn.send(("ack", None))
            ingest.finish()
        except BaseException as exc:
            code = 1
            ingest.abandon()
            log.exception("ingest process failed account=%s", session.account.id)
            conn.send(("error", (f"{type(exc).__name__}: {exc}", _errno_of(exc))))
        else:
            result = session.result
            done = {"fetched": result.fetched, "bytes": result.bytes, "skipped": result.skipped}
            conn.send(("done", done | {"peak_rss_kb": _peak_rss_kb()}))
    except BaseException:
        code = 1
    finally:
        db_connections.close_all()
        os._exit(code)


def _errno_of(exc: BaseException | None) -> int | None:
    """The OS error number behind ``exc`` or an error it was raised from (a full disk's first), for the parent."""
    found, seen = None, set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        number = getattr(exc, "errno", None)
        if number in store.DISK_FULL_ERRNOS:
            return number
        if found is None and isinstance(number, int):
            found = number
        exc = exc.__cause__ or exc.__context__
    return found


def _peak_rss_kb() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
