"""Child of bench/host_scale.py: one user's pages and page queries in one database, as one JSON line.

Each item is run in-process through Django's test client (the whole page: view, template, every
query) ``--runs`` times one after another (median), its SELECTs are run again on their own (the
page's database time, median), and then ``--concurrency`` forked processes run it for
``--duration`` seconds (p99 of every call). The SELECTs are captured with the cache emptied, so
they include the queries a warm page cache saves the whole page. ``--housekeeping`` times the
operator-wide jobs instead.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")

import django  # noqa: E402

django.setup()

from _web_data import RARE_WORD  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from accounts.models import MailAccount  # noqa: E402
from mailbox import actions, listing, search  # noqa: E402
from mailbox.models import Folder, Message  # noqa: E402
from mailbox.sync import check as sync_check  # noqa: E402
from mailbox.sync import diff as sync_diff  # noqa: E402
from mailbox.sync import session as sync_session  # noqa: E402
from ops import stats, storage  # noqa: E402

COMMON_WORD = "invoice"  # in one subject pattern of 16
NEW_UIDL = "new-mail-0000000001"  # not stored: what a server lists behind the settled listing


def items(username: str) -> dict:
    user = get_user_model().objects.get(username=username)
    account = MailAccount.objects.get(owner=user)
    client = Client()
    client.force_login(user)
    inbox = Message.objects.filter(owner=user, folder=Folder.INBOX).order_by("-date", "-id")
    deep = inbox[inbox.count() * 9 // 10]
    opened = inbox.exclude(thread_id=None).filter(id__gt=0).first()

    def get(url):
        def call():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return call

    # A poll finds what the last complete sync left: its listing digest stands, the password decrypts
    # with this run's keys. The same one-row write in the host database and alone.
    account.set_password("secret")
    account.listing_digest, account.listing_length = "0" * 64, Message.objects.filter(account=account).count()
    account.save(update_fields=["password_encrypted", "listing_digest", "listing_length"])

    def no_change_poll():
        # A no-change poll's database work (mailbox/sync/check.py): its batch's state in one query, its
        # outcome in one UPDATE. The POP3 session between them holds no connection.
        checks, to_sync = sync_check.plan([account.id])
        assert len(checks) == 1 and not to_sync, to_sync
        sync_check._record_unchanged(checks)

    def new_mail_sync():
        # A sync that finds one new message behind the settled listing: that UIDL looked up (before the
        # fetch and after), the quota left.
        sync_diff._known_among(account, [NEW_UIDL])
        sync_session._quota_left(account)
        sync_diff._known_among(account, [NEW_UIDL])

    def full_compare():
        # A listing that changed otherwise (mail deleted on the server by another client): every UIDL
        # the account has stored, to compare the whole listing with.
        sync_diff._known_uidls(account)

    return {
        "inbox": get("/"),
        "deep page": get(f"/?before={listing.encode(deep)}"),
        "conversation": get(f"/message/{opened.id}/"),
        "search common": get(f"/?q={COMMON_WORD}"),
        "search rare": get(f"/?q={RARE_WORD}"),
        "unread counts": get("/counts/"),
        "no-change poll (DB)": no_change_poll,
        "new-mail sync (DB)": new_mail_sync,
        "full listing compare (DB)": full_compare,
    }


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def query_ms(call, runs: int) -> float:
    cache.clear()  # every query the page can run, also those a warm page cache saves
    with CaptureQueriesContext(connection) as captured:
        call()
    selects = [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith(("SELECT", "WITH"))]
    samples = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            start = time.perf_counter()
            for sql in selects:
                cursor.execute(sql)
                cursor.fetchall()
            samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _worker(call, duration: float, out) -> None:
    connections.close_all()  # a connection of its own, not the parent's
    latencies, end = [], time.monotonic() + duration
    while time.monotonic() < end:
        latencies.append(timed(call))
    connections.close_all()
    out.put(latencies)


def concurrent_p99(call, concurrency: int, duration: float) -> tuple[float, float, list[float]]:
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(call, duration, out)) for _ in range(concurrency)]
    for proc in procs:
        proc.start()
    latencies = [x for _ in procs for x in out.get()]
    for proc in procs:
        proc.join()
    latencies.sort()
    return p99(latencies), len(latencies) / duration, latencies


def p99(latencies: list[float]) -> float:
    """The 99th percentile of sorted latencies."""
    return latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def measure(username: str, runs: int, concurrency: int, duration: float) -> dict:
    result = {}
    for name, call in items(username).items():
        for _ in range(2):
            call()  # warm: caches, the conversation marked read
        page = statistics.median(timed(call) for _ in range(runs))
        queries = query_ms(call, runs)
        tail, rate, latencies = concurrent_p99(call, concurrency, duration) if concurrency else (None, None, [])
        result[name] = {"page_ms": page, "queries_ms": queries, "p99_ms": tail, "per_s": rate}
        # Every call's latency (0.01 ms), for host_scale to take the p99 over several turns' calls together.
        result[name]["latencies_ms"] = [round(x, 2) for x in latencies]
    return result


def housekeeping() -> dict:
    result = {}
    # The beat job behind the dashboard's storage figures, slice by slice as beat runs it (its own
    # transactions; it writes only ops_storagetotal and its progress row), without its pauses.
    result[f"storage totals: one whole count ({storage.SLICE:,} ids a slice, no pause)"] = (
        timed(lambda: storage.count(pause=0)) / 1000
    )
    jobs = {
        "dashboard: total storage (counted totals)": (None, stats.total_storage),
        "dashboard: top 50 users by storage (counted totals)": (None, lambda: stats.users_by_storage(50)),
        "trash expiry (30 days; trash rows deleted 0-59 days ago)": (_trash_ages, lambda: actions.expire_trash(30)),
        "search indexing (caught up)": (None, search.index_all_pending),
    }
    for name, (prepare, job) in jobs.items():
        with transaction.atomic():  # measured, then rolled back: the seed stays as it is
            if prepare:
                prepare()  # not timed
            result[name] = timed(job) / 1000
            transaction.set_rollback(True)
    return result


def _trash_ages() -> None:
    """The seed's trash rows deleted between today and 59 days ago, so expiry has about half of them to do."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mailbox_message SET deleted_at = now() - make_interval(days => (id % 60)::int) "
            "WHERE folder = 'trash'"
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--housekeeping", action="store_true")
    args = parser.parse_args()
    setup_test_environment()  # the test client's host name is allowed
    if args.housekeeping:
        print(json.dumps(housekeeping()))
    else:
        print(json.dumps(measure(args.user, args.runs, args.concurrency, args.duration)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
