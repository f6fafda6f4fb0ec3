"""The embedded default's limits: a household's mail on SQLite (FTS5 search), no Redis.

A fresh SQLite file under a temporary directory, migrated, then ``--users`` users with
``--messages`` messages each (bench/_web_data.py rows, written with bulk_create so the FTS5
triggers index them as at ingest). For the first user: inbox page 1, a deep keyset page, a search
for a common and a rare word and the unread counts, each the whole page through Django's test
client in process, median of ``--runs``. Prints a Markdown table; the README quotes it.

    .venv/bin/python bench/sqlite_household.py [--users 4] [--messages 25000] [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--messages", type=int, default=25_000, help="per user")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="webpop-sqlite-bench-")
    for key in [k for k in os.environ if k.startswith(("WEBPOP_", "DJANGO_"))]:
        del os.environ[key]
    os.environ.update(
        DATABASE_URL=f"sqlite:///{workdir}/webpop.sqlite3",
        REDIS_URL="",
        WEBPOP_DATA_DIR=workdir,
        DJANGO_SETTINGS_MODULE="webpop.settings",
        DEBUG="false",
    )
    import django

    django.setup()
    from _web_data import RARE_WORD, RawFile, build_rows
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from accounts import actions
    from mailbox import listing
    from mailbox.models import Folder, Message

    call_command("migrate", verbosity=0)
    setup_test_environment()
    start = time.perf_counter()
    raw = [RawFile("00/00/missing", "0" * 64, 4000)]
    users = []
    for n in range(args.users):
        user = get_user_model().objects.create_user(f"member{n}", f"member{n}@example.org", "household-Password-1")
        account = actions.create_account(
            user, host="pop.example.net", port=995, security="ssl", username=f"member{n}", password="secret"
        )
        rows = build_rows(user.id, account.id, args.messages, raw, seed=n, uidl_prefix=f"m{n}")
        for i in range(0, len(rows), 2000):
            Message.objects.bulk_create(rows[i : i + 2000])
        users.append(user)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE mailbox_message SET thread_id = id WHERE thread_id IS NULL")
        cursor.execute("ANALYZE")
    seeded = time.perf_counter() - start

    user = users[0]
    client = Client()
    client.force_login(user)
    inbox = Message.objects.filter(owner=user, folder=Folder.INBOX).order_by("-date", "-id")
    deep = inbox[inbox.count() * 9 // 10]
    pages = {
        "inbox page 1": "/",
        "deep page (90% down)": f"/?before={listing.encode(deep)}",
        "search common word (invoice)": "/?q=invoice",
        f"search rare word ({RARE_WORD})": f"/?q={RARE_WORD}",
        "unread counts": "/counts/",
    }
    size = os.path.getsize(f"{workdir}/webpop.sqlite3")
    print(
        f"\n{args.users} users x {args.messages:,} messages on SQLite ({size / 2**20:,.0f} MB file, "
        f"seeded in {seeded:.0f} s); first user's pages, median of {args.runs}\n"
    )
    print("| page | ms |\n|---|---:|")
    for name, url in pages.items():
        for _ in range(2):
            assert client.get(url).status_code == 200, url
        samples = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            client.get(url)
            samples.append((time.perf_counter() - t0) * 1000)
        print(f"| {name} | {statistics.median(samples):.1f} |")
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
