"""A sync that finds new mail in a big mailbox kept on the server: the settled prefix against a whole compare.

One account with ``--messages`` messages stored, in a throwaway PostgreSQL database, and the fault
server (tests/fault_server.py) listing them under the same UIDLs. A first sync compares the whole
listing and settles it. Then ``--rounds`` times one new message arrives and a sync fetches it, two
ways taking turns:

- *settled prefix* (the code as it is): the listing starts with the settled one, so only the UIDL
  after it is looked up;
- *whole compare*: ``listing_length`` reset to 0 first, so no prefix matches and the sync reads every
  stored UIDL, as every sync with new mail did before the prefix (and as one still does when the
  listing changed otherwise).

Per sync: wall time, webpop's CPU (user + system of the thread the sync runs on: the fault server
answers from its own thread of this process) and the PostgreSQL backend's (from /proc), medians over
the rounds. Prints a Markdown table.

    .venv/bin/python bench/new_mail_sync.py [--messages 100000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _benchutil import Cleanup, base_env, cpu_seconds, create_database, drop_database, pg_url  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    db_name = f"webpop_bench_newmail_{os.getpid()}"
    with Cleanup() as cleanup, tempfile.TemporaryDirectory() as data_dir:
        create_database(db_name)
        cleanup.add(db_name, lambda: drop_database(db_name))
        os.environ.update(base_env())
        os.environ.update(
            DATABASE_URL=pg_url(db_name),
            WEBPOP_DATA_DIR=data_dir,
            DJANGO_SETTINGS_MODULE="webpop.settings",
            DEBUG="false",
            REDIS_URL="",
            WEBPOP_POP3_ALLOW_PRIVATE="true",
            LOG_LEVEL="WARNING",
        )
        rows = run(args.messages, args.rounds)
    print(f"\n{args.messages:,} messages stored, one new per sync, median of {args.rounds} syncs each\n")
    print("| sync with one new message | wall ms | webpop CPU ms | PostgreSQL CPU ms |")
    print("|---|---:|---:|---:|")
    for label, samples in rows.items():
        wall, cpu, db = (statistics.median(column) for column in zip(*samples, strict=True))
        print(f"| {label} | {wall:.0f} | {cpu:.0f} | {db:.0f} |")
    return 0


def run(size: int, rounds: int) -> dict[str, list[tuple[float, float, float]]]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts import actions
    from accounts.models import MailAccount
    from mailbox import sync
    from mailbox.models import Message
    from tests.fault_server import FaultServer, make_message

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("bench", "bench@example.org", "bench-Password-1")
    raw = make_message(0)
    with FaultServer([raw] * size) as server:
        account = actions.create_account(
            owner, host=server.host, port=server.port, security="none", username="alice", password="secret"
        )
        sha = hashlib.sha256(raw).hexdigest()
        now = timezone.now()
        for start in range(0, size, 10_000):
            Message.objects.bulk_create(
                Message(owner=owner, account=account, uidl=f"uid-{i:05d}", sha256=sha, size=len(raw),
                        raw_path="raw/bench", date=now)
                for i in range(start + 1, min(size, start + 10_000) + 1)
            )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE mailbox_message")
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        assert sync.sync_account(account.id).fetched == 0  # settles the listing
        samples: dict[str, list[tuple[float, float, float]]] = {"settled prefix": [], "whole compare": []}
        for turn in range(rounds * 2):
            way = ("settled prefix", "whole compare")[(turn + turn // 2) % 2]  # ABBA: neither always goes first
            if way == "whole compare":
                MailAccount.objects.filter(id=account.id).update(listing_length=0)
            server.deliver(make_message(size + turn + 1))
            wall, cpu, db = time.perf_counter(), time.thread_time(), cpu_seconds(backend)
            result = sync.sync_account(account.id)
            samples[way].append(
                (
                    (time.perf_counter() - wall) * 1000,
                    (time.thread_time() - cpu) * 1000,
                    (cpu_seconds(backend) - db) * 1000,
                )
            )
            assert (result.error, result.fetched) == (None, 1), result
            account.refresh_from_db()
            assert account.listing_digest and account.listing_length == size + turn + 1
        return samples


if __name__ == "__main__":
    sys.exit(main())
