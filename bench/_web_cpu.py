"""CPU per request in-process: the process CPU time of N requests to each URL, one at a time.

Run with the environment bench/web.py serves with (DATABASE_URL of the seeded database, REDIS_URL,
WEBPOP_DATA_DIR) and the code of the current directory (for a before/after table run it from another
checkout, e.g. a ``git archive`` of an older commit, on the same database)::

    .venv/bin/python bench/_web_cpu.py '{"sessionid": "...", "urls": [["conversation", "/message/7/"]]}' 200

Prints one JSON line: {label: {"mean": ms, "min": ms}}, the process CPU time per request over all
requests and in the cheapest batch of 20. The database's own time is not included
(its backend is another process). With ``--middleware`` it also times each middleware (wall time of
its own code, the view and the middlewares inside it excluded), to see which one a request pays for.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path.cwd())]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

BATCH = 20


def main() -> None:
    spec = json.loads(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = spec["sessionid"]
    result = {}
    for label, path in spec["urls"]:
        for _ in range(5):  # warm: imports, template and URL caches
            response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        # In batches of 20: on a loaded machine the least CPU a batch took is the steadiest figure.
        batches = []
        for _ in range(max(runs // BATCH, 1)):
            start = time.process_time()
            for _ in range(BATCH):
                client.get(path)
            batches.append((time.process_time() - start) / BATCH * 1000)
        result[label] = {"mean": round(statistics.mean(batches), 2), "min": round(min(batches), 2)}
    print(json.dumps(result))
    if "--middleware" in sys.argv:
        middleware_times(client, spec["urls"], runs)


def middleware_times(client: Client, urls: list, runs: int) -> None:
    """Each middleware's own time: the time inside it minus the time inside the handler it wraps."""
    client.get(urls[0][1])  # the handler loads its middleware on the first request
    node, chain = client.handler._middleware_chain, []
    while hasattr(getattr(node, "__wrapped__", None), "get_response"):
        chain.append(node.__wrapped__)
        node = node.__wrapped__.get_response
    inside = [0.0] * len(chain)  # time inside each middleware's get_response

    def timed(inner, index):
        def call(request):
            start = time.perf_counter()
            try:
                return inner(request)
            finally:
                inside[index] += time.perf_counter() - start

        return call

    for index, mw in enumerate(chain):
        mw.get_response = timed(mw.get_response, index)
    for label, path in urls:
        inside[:] = [0.0] * len(chain)
        start = time.perf_counter()
        for _ in range(runs):
            client.get(path)
        total = time.perf_counter() - start
        outer = [total, *inside[:-1]]
        own = {type(mw).__name__: (outer[i] - inside[i]) / runs * 1000 for i, mw in enumerate(chain)}
        view = inside[-1] / runs * 1000
        print(
            f"{label}: request {total / runs * 1000:.2f} ms, view {view:.2f} ms; middleware own ms: "
            + ", ".join(f"{n} {v:.3f}" for n, v in sorted(own.items(), key=lambda kv: -kv[1]))
        )


if __name__ == "__main__":
    main()
