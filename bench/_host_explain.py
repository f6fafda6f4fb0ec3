"""EXPLAIN (ANALYZE, BUFFERS) of one user's hot queries on a seeded bench/host_scale.py database.

Each page is loaded once with the cache emptied and its SELECTs on the message table are
explained as the page ran them; docs/scaling.md quotes the output.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/webpop_hostscale_<fingerprint> WEBPOP_DATA_DIR=/tmp/x \
        .venv/bin/python bench/_host_explain.py --user user0
"""

from __future__ import annotations

import argparse
import sys

from _host_measure import items  # sets Django up
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext, setup_test_environment


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user", required=True)
    parser.add_argument("--only", default="", help="comma-separated item names")
    args = parser.parse_args()
    setup_test_environment()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    for name, call in items(args.user).items():
        if only and name not in only:
            continue
        call()  # warm, as measured
        cache.clear()
        with CaptureQueriesContext(connection) as captured:
            call()
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT") or '"mailbox_message"' not in sql:
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            print(f"### {args.user}: {name}\n\n```\n{sql[:400]}{' …' if len(sql) > 400 else ''}\n\n{plan}\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
