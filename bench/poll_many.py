"""Polling many accounts with no new mail: 1,000 accounts, two Celery workers.

One real Dovecot (implicit TLS, certificate verified) with 1,000 users, each
holding 0, 1 or 2 small messages; 1,000 webpop MailAccounts across 50 webpop
users in a throwaway PostgreSQL database; two Celery worker processes
(``celery -A webpop worker --concurrency 1``, twice) on Redis database 14,
flushed before and after.

First every account is made due and enqueued the way beat does it
(``mailbox.tasks.poll_due_accounts``, repeated until nothing is left to claim),
which fetches the messages: the accounts are then in sync. Then the measured
rounds: all 1,000 accounts made due again and enqueued; the time until every
account's ``last_success_at`` is after the start (taken from the database, so
it is exact) is the time to poll them all. No round may fetch anything.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _benchutil import Cleanup, base_env, create_database, drop_database, pg_url, stop_group  # noqa: E402

from tests.dovecot import DovecotServer  # noqa: E402

ACCOUNTS = int(os.environ.get("BENCH_POLL_ACCOUNTS", "1000"))
WEBPOP_USERS = 50
WORKERS = 2
ROUNDS = 2  # measured no-change rounds
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
ROUND_TIMEOUT = 600.0


def small_message(user: int, n: int) -> bytes:
    body = f"Hello {user}, this is message {n}.\r\n" * 40
    return (
        f"From: Sender <sender@example.net>\r\nTo: user{user}@example.org\r\n"
        f"Subject: Poll benchmark {user}/{n}\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <poll-{user}-{n}@example.net>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process and its children (Celery's pool processes), the largest."""
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    peak = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
    return peak * 1024 / 1e6


def main() -> int:
    t0 = time.perf_counter()
    with Cleanup() as cleanup:
        tmp = Path(tempfile.mkdtemp(prefix="webpop-bench-poll-"))
        cleanup.add("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))

        server = DovecotServer(tmp / "dovecot")
        cleanup.add("Dovecot", server.close)
        server.start()
        delivered = 0
        for i in range(ACCOUNTS):
            server.add_user(f"p{i:04d}", f"pw-{i:04d}")
            for n in range(i % 3):
                server.deliver(f"p{i:04d}", small_message(i, n))
                delivered += 1

        db = f"webpop_poll_{os.getpid()}"
        create_database(db)
        cleanup.add(f"database {db}", lambda: drop_database(db))

        env = base_env() | {
            "DJANGO_SETTINGS_MODULE": "webpop.settings",
            "DATABASE_URL": pg_url(db),
            "REDIS_URL": REDIS_URL,
            "WEBPOP_DATA_DIR": str(tmp / "webpop-data"),
            "WEBPOP_POP3_CA_FILE": str(server.ca_file),
            "WEBPOP_POP3_ALLOW_PRIVATE": "true",
            "LOG_LEVEL": "WARNING",
        }
        os.environ.update(env)
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connections
        from django.utils import timezone

        from accounts.actions import create_account
        from accounts.models import MailAccount
        from mailbox import tasks
        from mailbox.models import Message, SyncRun
        from webpop.celery import app

        cleanup.add("Django's database connections", connections.close_all)
        call_command("migrate", "--noinput", verbosity=0)

        User = get_user_model()
        owners = [
            User.objects.create_user(f"owner{k:02d}", f"owner{k:02d}@example.org", "owner-Password-1")
            for k in range(WEBPOP_USERS)
        ]
        for i in range(ACCOUNTS):
            create_account(
                owners[i % WEBPOP_USERS],
                host="localhost",
                port=server.pop3s_port,
                security="ssl",
                username=f"p{i:04d}",
                password=f"pw-{i:04d}",
                policy="keep",
                label=f"poll {i}",
            )

        import redis

        broker = redis.Redis.from_url(REDIS_URL)
        broker.flushdb()
        cleanup.add("Redis database", broker.flushdb)
        cleanup.add("Celery publisher connections", app.pool.force_close_all)

        workers = []
        for k in range(WORKERS):
            log = (tmp / f"worker{k}.log").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "webpop", "worker", "--concurrency", "1",
                 "--pool", "prefork", "-n", f"bench{k}-{os.getpid()}@%h", "--loglevel", "WARNING",
                 "--without-heartbeat", "--without-gossip", "--without-mingle"],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            log.close()
            workers.append(proc)
            cleanup.add(f"Celery worker {proc.pid}", lambda proc=proc: stop_group(proc))
        _wait_for_workers(app, workers, tmp)

        def poll_round() -> tuple[float, int, int]:
            """Make every account due, enqueue like beat; seconds until all succeeded."""
            MailAccount.objects.update(next_poll_at=timezone.now() - dt.timedelta(seconds=1))
            start = timezone.now()
            enqueued = 0
            while claimed := tasks.poll_due_accounts():
                enqueued += claimed
            deadline = time.monotonic() + ROUND_TIMEOUT
            while (done := MailAccount.objects.filter(last_success_at__gte=start).count()) < ACCOUNTS:
                failed = MailAccount.objects.filter(last_attempt_at__gte=start).exclude(last_error_class="")
                stuck = done + failed.count() >= ACCOUNTS
                if stuck or time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                    errors = Counter(failed.values_list("last_error_class", flat=True))
                    sample = list(failed.values_list("username", "last_error")[:3])
                    raise SystemExit(
                        f"Not all accounts were polled: {done} of {ACCOUNTS} succeeded; failed by error class: "
                        f"{dict(errors)}; for example {sample}; worker log:\n{_tail(tmp / 'worker0.log')}\n"
                        f"Dovecot log:\n{_tail(server.log_file)}"
                    )
                time.sleep(0.05)
            last = MailAccount.objects.order_by("-last_success_at").values_list("last_success_at", flat=True)[0]
            fetched = sum(SyncRun.objects.filter(started_at__gte=start).values_list("fetched", flat=True))
            runs = SyncRun.objects.filter(started_at__gte=start).count()
            return (last - start).total_seconds(), fetched, runs

        first_seconds, first_fetched, _ = poll_round()
        stored = Message.objects.count()
        if stored != delivered:
            raise SystemExit(f"The first round stored {stored} of {delivered} messages.")
        results = []
        for _ in range(ROUNDS):
            seconds, fetched, runs = poll_round()
            if fetched or Message.objects.count() != delivered:
                raise SystemExit(f"A no-change round fetched {fetched} messages.")
            results.append((seconds, runs))
        worker_rss = max(peak_rss_mb(w.pid) for w in workers)

    print(
        f"{ACCOUNTS:,} POP3 accounts (Dovecot users, {delivered:,} messages already stored, "
        f"0-2 per mailbox) across {WEBPOP_USERS} webpop users; {WORKERS} Celery worker processes "
        f"(prefork, concurrency 1 each) on Redis; PostgreSQL; loopback TLS to Dovecot (certificate "
        f"verified). Each round: all accounts made due and enqueued by `poll_due_accounts`; seconds "
        f"until every account has `last_success_at` after the start.\n"
    )
    print("| round | seconds | polls/s | messages fetched |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| first sync (fetches the stored messages) | {first_seconds:.1f} | {ACCOUNTS / first_seconds:,.0f} | "
          f"{first_fetched:,} |")  # fmt: skip
    for n, (seconds, _runs) in enumerate(results, 1):
        print(f"| no new mail, run {n} | {seconds:.1f} | {ACCOUNTS / seconds:,.0f} | 0 |")
    print(
        f"\nCelery worker peak RSS (largest process): {worker_rss:.0f} MB. Dovecot runs the test fixture's "
        "configuration: a new login process and a new pop3 process for every connection, SCRAM-SHA-256 "
        "login (webpop picks the strongest mechanism offered)."
    )
    print(f"\nScript run time: {time.perf_counter() - t0:.0f} s.", file=sys.stderr)
    return 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_for_workers(app, workers: list[subprocess.Popen], tmp: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for k, w in enumerate(workers):
            if w.poll() is not None:
                raise SystemExit(f"Celery worker {k} exited with {w.returncode}:\n{_tail(tmp / f'worker{k}.log')}")
        if len(app.control.ping(timeout=1.0)) >= len(workers):
            return
    raise SystemExit(f"Celery workers did not answer within {timeout:.0f} s:\n{_tail(tmp / 'worker0.log')}")


if __name__ == "__main__":
    sys.exit(main())
