"""Making the mail store's local files durable: one fsync each, or many at once.

Inside ``batch_durability()`` local writes skip their own fsyncs and leaving the
block makes all of them durable at once; ``deferred_durability()`` leaves that to
the caller (``make_durable``), and ``durability_elsewhere()`` lets writes skip
their fsyncs for a later block to cover. One syncfs per batch of a sync replaces
thousands of file and folder fsyncs.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import threading
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_deferred = threading.local()


def in_batch() -> bool:
    """Whether a ``batch_durability()`` or ``deferred_durability()`` block collects paths here."""
    return getattr(_deferred, "paths", None) is not None


def defer(*paths: Path) -> bool:
    """Record paths to make durable later; False when not in a batch (sync now)."""
    pending = getattr(_deferred, "paths", None)
    if pending is None:
        return bool(getattr(_deferred, "elsewhere", False))
    pending.update(paths)
    return True


@contextlib.contextmanager
def durability_elsewhere():
    """Local writes inside skip their fsyncs: the caller makes them durable later.

    Before any row points at such a file, a ``batch_durability()`` block must
    cover it (``store.require_durable`` names it there). The sync engine stores raw
    files this way while it reads from the server, and makes them durable
    together with the attachments of the same batch.
    """
    before = getattr(_deferred, "elsewhere", False)
    _deferred.elsewhere = True
    try:
        yield
    finally:
        _deferred.elsewhere = before


@contextlib.contextmanager
def batch_durability():
    if getattr(_deferred, "paths", None) is not None:
        yield  # nested: the outer block syncs
        return
    _deferred.paths = set()
    try:
        yield
        paths, _deferred.paths = _deferred.paths, None
        if paths:
            _make_durable(paths)
    finally:
        _deferred.paths = None


@contextlib.contextmanager
def deferred_durability():
    """Like ``batch_durability()``, but the caller makes the files durable, later and elsewhere.

    Yields the set of paths written inside; ``make_durable(paths)`` must run before any
    row points at them. The sync engine parses the next batch meanwhile: the wait for
    the disk is off its critical path.
    """
    if getattr(_deferred, "paths", None) is not None:
        raise RuntimeError("deferred_durability() inside another durability block")
    paths = _deferred.paths = set()
    try:
        yield paths
    finally:
        _deferred.paths = None


def make_durable(paths: set[Path]) -> None:
    """Make files written under ``deferred_durability()`` durable (one syncfs on Linux)."""
    if paths:
        _make_durable(paths)


def _syncfs(path: Path) -> bool:
    """syncfs(2) on the file system holding ``path``; False where libc has none (not Linux).

    Through ctypes because the ``os`` module has no binding for it. One syncfs per
    batch instead of an fsync per file and per folder: a first sync of 2,000 messages
    over a 1 Gbit/s, 10 ms link took 3.2 s with it, 4.5 s with the batch's files
    fsynced one by one before their rows and 7.0 s with each fsynced as written
    (bench/RESULTS.md, "ingest over a household link", set 9).
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "syncfs"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _make_durable(paths: set[Path]) -> None:
    # Every path is on the store's one file system: syncfs of it through any folder named.
    folder = min((path for path in paths if path.is_dir()), default=None)
    if folder is not None and _syncfs(folder):
        return
    for path in sorted(paths):  # no syncfs (not Linux): each file and folder
        if path.is_dir():
            fsync_dir(path)
        elif path.exists():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
