"""Child processes of bench/ingest.py, one job each, so each has its own peak RSS.

    python bench/_ingest_child.py raw PORT USER PASSWORD CA_FILE RUNS
    python bench/_ingest_child.py setup PORT USER PASSWORD      (Django env set by the parent)
    python bench/_ingest_child.py sync ACCOUNT_ID [PROFILE_FILE]

``BENCH_INGEST_VARIANT`` (for bench/ingest_relay.py) takes pieces out of the
sync's ingest path for one run, comma-separated: ``fsync`` (every file and folder fsynced as it
is written, no batch durability), ``fsync-deferred`` (the batch's files fsynced
one by one where the batch is made durable), ``orm`` (``bulk_create`` instead of
COPY).

Each prints one JSON line on stdout. Peak RSS is the process's own VmHWM
(read from /proc/self/status at the end), so nothing is inherited from the
parent, which holds the whole corpus in memory.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _benchutil import own_cpu_seconds, status_kb  # noqa: E402


class _Sink:
    """Discards what is written (the disk is not what is measured here)."""

    name = "/dev/null"

    def write(self, data) -> int:
        return len(data)


def raw(port: int, user: str, password: str, ca_file: str, runs: int) -> dict:
    from mailbox.pop3 import DEFAULT_WINDOW, Pop3Client

    times, size, count = [], 0, 0
    sink = _Sink()
    for _ in range(runs):
        start = time.perf_counter()
        with Pop3Client("localhost", port, "ssl", ca_file=ca_file, allow_private=True, window=DEFAULT_WINDOW) as pop:
            pop.login(user, password, mechanism="USER")
            number_count, _octets = pop.stat()
            size = count = 0
            for _number, result in pop.retr_many(range(1, number_count + 1), lambda _n: sink):
                size += result.size
                count += 1
            pop.quit()
        times.append(time.perf_counter() - start)
    return {
        "seconds": min(times),
        "all_seconds": times,
        "count": count,
        "bytes": size,
        "peak_rss_kb": status_kb("self", "VmHWM"),
    }


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")
    import django

    django.setup()


def setup(port: int, user: str, password: str) -> dict:
    _django()
    from django.contrib.auth import get_user_model

    from accounts.actions import create_account

    owner = get_user_model().objects.create_user("bench", "bench@example.org", "bench-Password-1")
    account = create_account(
        owner, host="localhost", port=port, security="ssl", username=user, password=password, policy="keep"
    )
    return {"account": account.id}


def _apply_variant(pieces: list[str]) -> None:
    """Take the named pieces out of the ingest path (see the module docstring); unknown names fail."""
    from pathlib import Path as _Path

    from mailbox import durability, pgcopy, store

    for piece in pieces:
        if piece == "fsync":
            durability.defer = lambda *paths: False
            commit_raw = store.commit_raw

            def fsynced_commit_raw(tmp_path, *, commit_raw=commit_raw, **kwargs):
                fd = os.open(tmp_path, os.O_RDONLY)  # the temp file was written unsynced: sync it first
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                return commit_raw(_Path(tmp_path), **kwargs)

            store.commit_raw = fsynced_commit_raw
        elif piece == "fsync-deferred":
            durability._syncfs = lambda path: False
        elif piece == "orm":
            pgcopy.copy_in = lambda model, rows: model.objects.bulk_create(rows)
        elif piece:
            raise SystemExit(f"unknown ingest variant piece {piece!r}")


def sync(account_id: int, profile_file: str | None) -> dict:
    _django()
    _apply_variant(os.environ.get("BENCH_INGEST_VARIANT", "").split(","))
    from django.db import connection

    from mailbox.models import Message
    from mailbox.sync import sync_account

    connection.ensure_connection()  # as in a worker: the connection is already open
    profiler = None
    if profile_file:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start, (user_start, system_start) = time.perf_counter(), own_cpu_seconds()
    result = sync_account(account_id)
    seconds = time.perf_counter() - start
    user, system = own_cpu_seconds()
    system_cpu = system - system_start
    cpu = user - user_start + system_cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_file)
    # The search index is built after the sync (a task it enqueues); timed on its own.
    from mailbox import search

    index_start = time.perf_counter()
    indexed = search.index_all_pending()
    index_seconds = time.perf_counter() - index_start
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "system_cpu_seconds": system_cpu,
        "index_seconds": index_seconds,
        "indexed": indexed,
        "fetched": result.fetched,
        "bytes": result.bytes,
        "skipped": result.skipped,
        "error": result.error,
        "more_pending": result.more_pending,
        "stored": Message.objects.filter(account_id=account_id).count(),
        "peak_rss_kb": status_kb("self", "VmHWM"),
    }


def main(argv: list[str]) -> None:
    job, args = argv[0], argv[1:]
    if job == "raw":
        out = raw(int(args[0]), args[1], args[2], args[3], int(args[4]))
    elif job == "setup":
        out = setup(int(args[0]), args[1], args[2])
    elif job == "sync":
        out = sync(int(args[0]), args[1] if len(args) > 1 else None)
    else:
        raise SystemExit(f"unknown job {job!r}")
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
