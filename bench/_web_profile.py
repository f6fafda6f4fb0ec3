"""Child of bench/web.py --profile: where does a page's time go?

For each URL (relative, GET, as the seeded user): wall time in-process (Django test client, no
network), the number of SQL queries and their total time, the slowest queries with their
EXPLAIN ANALYZE, and the top functions of a cProfile run. Reads the session key and URLs as one
JSON argument.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

RUNS = 20


def main() -> None:
    spec = json.loads(sys.argv[1])
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = spec["sessionid"]
    for label, path in spec["urls"]:
        client.get(path)  # warm
        start = time.perf_counter()
        for _ in range(RUNS):
            response = client.get(path)
        per_request = (time.perf_counter() - start) / RUNS * 1000
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        sql_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000
        print(f"\n## {label}  GET {path}  → {response.status_code}")
        print(f"{per_request:.1f} ms per request in-process; {len(queries)} queries, {sql_ms:.1f} ms in SQL")
        for q in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]:
            print(f"\n- {float(q['time']) * 1000:.1f} ms: {q['sql'][:600]}")
            if q["sql"].lstrip().upper().startswith("SELECT") and float(q["time"]) > 0.002:
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + q["sql"])
                    print("  " + "\n  ".join(row[0] for row in cursor.fetchall()[:25]))
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(5):
            client.get(path)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print("\n```\n" + "\n".join(out.getvalue().splitlines()[:45]) + "\n```")


if __name__ == "__main__":
    main()
