"""Polling many accounts with no new mail, through a relay that adds network latency; two Celery workers.

One real Dovecot (implicit TLS, certificate verified; login processes reused, as a
production server runs them) with BENCH_POLL_ACCOUNTS users (default 2,000), each
holding 0, 1 or 2 small messages and SCRAM keys stored as servers offering SCRAM
store them; as many webpop MailAccounts across 50 webpop users in a throwaway
PostgreSQL database; two Celery worker processes (prefork, concurrency 1 each) on
Redis database 14, flushed before and after. Every connection goes through
``tests/relay.py`` holding each chunk BENCH_POLL_DELAY seconds each way (default
0.05: a 100 ms round trip; 0 for loopback) and counting turns.

First every account is made due and enqueued the way beat does it
(``mailbox.tasks.poll_due_accounts``), which fetches the messages: the accounts
are then in sync. Then the measured rounds: all accounts made due again and
enqueued; the time until every account's ``last_success_at`` is after the start
(from the database, so exact) is the time to poll them all. No-change rounds may
fetch nothing; the last round delivers one new message to 5 % of the mailboxes
first, and each must arrive exactly once. Printed per round: polls/s, turns per
poll (plus the TCP handshake, which the relay does not see), the workers' own CPU
time per poll (user + system of every worker process, from /proc), and after all
rounds the workers' total RSS and the peak of PostgreSQL connections to the
benchmark's database.
"""

from __future__ import annotations

import contextlib
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

from _benchutil import (  # noqa: E402
    Cleanup,
    base_env,
    children,
    cpu_seconds,
    create_database,
    drop_database,
    pg_url,
    proc_stat,
    pss_kb,
    status_kb,
    stop_group,
)

from tests.dovecot import DovecotServer  # noqa: E402
from tests.relay import Relay  # noqa: E402

# Dovecot as a busy server runs it, so that what is measured is webpop, not Dovecot's process handling:
# - login processes that serve many connections each (Dovecot's "high-performance" login mode), one per core;
# - pop3 processes that serve many sessions at once and are reused, as a host whose users all share one
#   mail uid (virtual users) can run them: with one session per process, every idle pop3 process (one for
#   each session once in flight at the same time) woke up for each new connection, as they all wait on
#   one socket.
DOVECOT_TUNING = """
default_process_limit = 4000
default_client_limit = 20000
service pop3-login {
  service_count = 0
  process_min_avail = 2
  client_limit = 4000
}
service pop3 {
  service_count = 1000
  client_limit = 100
  process_min_avail = 2
  process_limit = 4000
}
"""

ACCOUNTS = int(os.environ.get("BENCH_POLL_ACCOUNTS", "2000"))
DELAY = float(os.environ.get("BENCH_POLL_DELAY", "0.05"))  # each way
NEW_MAIL_SHARE = 0.05
# The accounts' login method: "" lets webpop choose (SCRAM-SHA-256, the strongest Dovecot offers), "PLAIN"
# is what most providers offer (over TLS).
AUTH = os.environ.get("BENCH_POLL_AUTH", "").upper()
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


def process_tree(pid: int) -> list[int]:
    """A Celery worker and its pool processes."""
    return [pid, *children(pid)]


def cpu_of(pids: list[int]) -> float:
    """User + system time of ``pids`` (each worker's own, its waited-for children's too); gone ones count 0."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid, waited_children=True)
    return total


def session_members(sid: int) -> list[int]:
    """Every live process of session ``sid`` (Dovecot's master and all it started)."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = proc_stat(entry.name)
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def postmaster_pid() -> int:
    """The PostgreSQL server the benchmark's database is on: the parent of this connection's backend."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    return int(proc_stat(backend)[1])


class OtherCpu:
    """CPU seconds of what shares the machine with the workers: the relay (this process: the relay's
    thread, the round's own polling of the database), Dovecot, PostgreSQL. Exited children count
    through their parent's cutime/cstime."""

    def __init__(self, dovecot_sid: int, postmaster: int):
        self.dovecot_sid, self.postmaster = dovecot_sid, postmaster

    def read(self) -> dict[str, float]:
        own = os.times()
        return {
            "relay": own.user + own.system,
            "dovecot": cpu_of(session_members(self.dovecot_sid)),
            "postgres": cpu_of(process_tree(self.postmaster)),
        }


class ConnectionPeak:
    """Samples pg_stat_activity for one database every 50 ms in a thread; ``peak`` is the most seen."""

    def __init__(self, db: str):
        import threading

        self.db, self.peak, self._stop = db, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg
        from _benchutil import PG_DSN

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            while not self._stop.wait(0.05):
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.db,)
                ).fetchone()
                self.peak = max(self.peak, count - 0)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def main() -> int:
    t0 = time.perf_counter()
    with Cleanup() as cleanup:
        tmp = Path(tempfile.mkdtemp(prefix="webpop-bench-poll-"))
        cleanup.add("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))

        server = DovecotServer(tmp / "dovecot", extra_config=DOVECOT_TUNING)
        cleanup.add("Dovecot", server.close)
        server.start()
        delivered = 0
        for i in range(ACCOUNTS):
            server.add_user(f"p{i:04d}", f"pw-{i:04d}", scram=True)
            for n in range(i % 3):
                server.deliver(f"p{i:04d}", small_message(i, n))
                delivered += 1
        relay = Relay(("127.0.0.1", server.pop3s_port), delay=DELAY).start()
        cleanup.add("relay", relay.stop)

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
            # Every account here is on one server: the per-host limit (20 by default, for providers that
            # throttle logins from one address) would measure that limit, not the check.
            "WEBPOP_CHECK_PER_HOST": os.environ.get("BENCH_POLL_PER_HOST", "200"),
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
                port=relay.port,
                security="ssl",
                username=f"p{i:04d}",
                password=f"pw-{i:04d}",
                policy="keep",
                label=f"poll {i}",
                auth_mechanism=AUTH,
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

        worker_pids = [p for w in workers for p in process_tree(w.pid)]

        others = OtherCpu(server.pid, postmaster_pid())
        other_cpu: list[dict[str, float]] = []

        def poll_round() -> tuple[float, int, int, float, float]:
            """Make every account due, enqueue like beat; seconds until all succeeded."""
            MailAccount.objects.update(next_poll_at=timezone.now() - dt.timedelta(seconds=1))
            relay.wait_closed()
            relay.reset()
            cpu_before, others_before = cpu_of(worker_pids), others.read()
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
            seconds = (last - start).total_seconds()
            time.sleep(1.0)  # the last task's bookkeeping (its result, the next wake-up) ends
            cpu = cpu_of(worker_pids) - cpu_before
            others_after = others.read()
            other_cpu.append({k: others_after[k] - others_before[k] for k in others_after})
            relay.wait_closed()
            turns = sum(c.turns for c in relay.conversations) / max(1, relay.connections)
            fetched = sum(SyncRun.objects.filter(started_at__gte=start).values_list("fetched", flat=True))
            runs = SyncRun.objects.filter(started_at__gte=start).count()
            return seconds, fetched, runs, turns, cpu

        peak = ConnectionPeak(db)
        relay.delay = 0.0  # the first sync and one no-change round on loopback, for comparison
        first = poll_round()
        stored = Message.objects.count()
        if stored != delivered:
            raise SystemExit(f"The first round stored {stored} of {delivered} messages.")

        def no_change_round():
            result = poll_round()
            if result[1] or Message.objects.count() != delivered:
                raise SystemExit(f"A no-change round fetched {result[1]} messages.")
            return result

        loopback = no_change_round()
        relay.delay = DELAY
        results = [no_change_round() for _ in range(ROUNDS)]
        with_mail = list(range(0, ACCOUNTS, round(1 / NEW_MAIL_SHARE)))
        for i in with_mail:
            server.deliver(f"p{i:04d}", small_message(i, 99))
        delivered += len(with_mail)
        mixed = poll_round()
        if mixed[1] != len(with_mail) or Message.objects.count() != delivered:
            raise SystemExit(
                f"The mixed round fetched {mixed[1]} of {len(with_mail)}; {Message.objects.count()} stored."
            )
        keys = list(Message.objects.values_list("account_id", "uidl"))
        if len(set(keys)) != len(keys):
            raise SystemExit("A message was stored twice.")
        pg_peak = peak.stop()
        worker_rss = sum(status_kb(p, "VmRSS") for p in worker_pids) / 1024
        worker_pss = sum(pss_kb(p) for p in worker_pids) / 1024
        worker_hwm = max(status_kb(p, "VmHWM") for p in worker_pids) / 1024

    print(
        f"{ACCOUNTS:,} POP3 accounts across {WEBPOP_USERS} webpop users; {WORKERS} Celery worker processes "
        f"(prefork, concurrency 1 each) on Redis; PostgreSQL; implicit TLS to Dovecot (certificate verified) "
        f"through a relay adding {DELAY * 1000:.0f} ms each way ({2 * DELAY * 1000:.0f} ms round trip; "
        f"none in the loopback rows); "
        f"{AUTH or 'SCRAM-SHA-256 (webpop picks the strongest method offered)'}. Each round: all accounts made due and "
        f"enqueued by `poll_due_accounts`; seconds until every account has `last_success_at` after the start.\n"
    )
    print("| round | seconds | polls/s | turns per poll (+1 TCP) | worker CPU ms per poll | syncs | fetched |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = [("first sync (fetches what is there), loopback", first), ("no new mail, loopback", loopback)]
    rows += [(f"no new mail, run {n}", r) for n, r in enumerate(results, 1)]
    rows += [(f"new mail in {NEW_MAIL_SHARE:.0%} of the mailboxes", mixed)]
    for name, (seconds, fetched, runs, turns, cpu) in rows:
        print(f"| {name} | {seconds:.1f} | {ACCOUNTS / seconds:,.0f} | {turns:.2f} | "
              f"{cpu * 1000 / ACCOUNTS:.2f} | {runs:,} | {fetched:,} |")  # fmt: skip
    print(
        "\nWhere the machine's CPU went, ms per poll: the workers, the relay (this script's process: the relay "
        "thread and the round's own polling of the database), Dovecot, PostgreSQL; and cores busy on average "
        f"(all of it over the round's seconds; the machine has {os.cpu_count()}).\n"
    )
    print("| round | workers | relay | Dovecot | PostgreSQL | all | cores busy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (name, (seconds, _fetched, _runs, _turns, cpu)), other in zip(rows, other_cpu, strict=True):
        parts = [cpu, other["relay"], other["dovecot"], other["postgres"]]
        cells = " | ".join(f"{part * 1000 / ACCOUNTS:.2f}" for part in [*parts, sum(parts)])
        print(f"| {name} | {cells} | {sum(parts) / seconds:.2f} |")
    print(
        f"\nWorker processes' memory at the end, all together: {worker_pss:.0f} MB PSS (shared pages counted once), "
        f"{worker_rss:.0f} MB as the sum of RSS (largest peak {worker_hwm:.0f} MB). "
        f"Peak PostgreSQL connections to the benchmark database (workers, this script, its sampler): {pg_peak}."
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
