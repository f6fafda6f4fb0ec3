"""In-process CPU per inbox page: what a signed-in page view costs in the web process itself.

    .venv/bin/python bench/inbox_cpu.py [--requests 200] [--rounds 3] [--messages 50]

Starts a private PostgreSQL and Redis (as the tests do, tests/services.py), migrates, stores
``--messages`` messages for one signed-in user, then times ``--requests`` GETs of the inbox with
Django's test client, in rounds: process CPU time (``time.process_time``) per request, so the
database's and Redis's own work is not counted, only what this process spends (session, user,
middleware, the cached folder page).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child(args) -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tests import factories

    user = get_user_model().objects.create_user("alice", "alice@example.org", "bench-passphrase-1")
    account = factories.make_account(user)
    for i in range(args.messages):
        raw = factories.build_message(f"Message {i}", f"Body {i}.", message_id=f"<m{i}@example.net>")
        factories.store_message(account, raw, f"uidl-{i}")
    client = Client()
    client.force_login(user, backend="users.backends.CachedModelBackend")
    for _ in range(5):  # warm: templates, the cached folder page, connections
        assert client.get("/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get("/")
    rounds = []
    for _ in range(args.rounds):
        start = time.process_time()
        for _ in range(args.requests):
            assert client.get("/").status_code == 200
        rounds.append((time.process_time() - start) * 1000 / args.requests)
    print(json.dumps({"ms_cpu_per_request": [round(r, 3) for r in rounds], "queries_per_request": len(queries)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    sys.path.insert(0, str(REPO))
    from tests import services

    folder = Path(tempfile.mkdtemp(prefix="webpop-inbox-cpu-"))
    stops = []
    try:
        redis, redis_port = services.private_redis(folder / "redis")
        stops.append(redis)
        postgres, pg_port = services.private_postgresql(folder)
        stops.append(postgres)
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/{services.DATABASE}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "WEBPOP_DATA_DIR": str(folder / "data"),
            "DEBUG": "0",
            "ALLOWED_HOSTS": "testserver",
        }
        run = {"cwd": REPO, "env": env, "check": True}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], **run)
        me = [sys.executable, __file__, "--child", *sys.argv[1:]]
        out = subprocess.run(me, capture_output=True, text=True, **run).stdout
        print(out.strip().splitlines()[-1])
    finally:
        for executor in reversed(stops):
            if executor.running():
                executor.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
