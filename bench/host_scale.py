"""A host's data at scale (issue 21): per-user pages with many users against the same user alone.

A PostgreSQL database holds ``--users`` users and ``--messages`` messages, skewed: ``--big-users``
users of ``--big-size`` messages each, the rest a few thousand each (between a quarter of and
1.75 times their average). Seeding is bench/_host_seed.py (COPY, the search documents built in
the same pass, indexes built once at the end); the seeded database is kept for the next run
(``webpop_hostscale_<fingerprint>``: the sizes, the seed code and the migrations), as are the
databases holding one user alone with the same mail (``webpop_hostscale_alone_<fingerprint>``).
``--fresh`` seeds again; ``--drop`` removes this run's databases at the end.

For a big user (the first) and a small one (the first of the rest), in the host database and
alone: inbox page 1, a deep keyset page (90% down the inbox), a conversation, a search for a
common word and for a rare one, the unread counts, and the database work of a poll: a no-change
poll (the check's batch query and its UPDATE), a sync that finds one new message behind the settled
listing (that UIDL looked up, the quota sum) and a full listing compare (every stored UIDL: a
listing that changed otherwise). Each as a whole page (Django's test client, in process,
median of ``--runs``), as its SELECTs alone (median), and the p99 of the whole page with
``--concurrency`` processes for ``--duration`` seconds. With ``--rounds N`` the host database and the
user alone take turns N times (the order alternating), so a change in the machine's load weighs on both
alike; each page and query figure is the median of its rounds, the p99 is that of all the rounds' calls
together. Then the operator-wide jobs on the host
database, in seconds and seconds per million messages. Prints Markdown tables.

Target (issue 21): every figure within 1.25x of the same user alone.

    .venv/bin/python bench/host_scale.py [--users 2000] [--messages 10000000] [--big-users 4]
        [--big-size 500000] [--runs 15] [--duration 5] [--concurrency 8] [--rounds 1] [--fresh] [--drop]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _benchutil import (  # noqa: E402
    PG_DSN,
    Cleanup,
    base_env,
    create_database,
    drop_database,
    pg_url,
    python_speed_ms,
    run_checked,
    run_json,
)

PYTHON = sys.executable
CACHE_DIR = REPO / "var" / "bench-hostscale"
DB_PREFIX = "webpop_hostscale"


def sizes(users: int, messages: int, big_users: int, big_size: int) -> list[tuple[int, int]]:
    """[key, messages] per user: the big ones first, then the rest around their average."""
    rest = messages - big_users * big_size
    small = users - big_users
    if small < 1 or rest < small:
        raise SystemExit("--messages must leave at least one message for each of the other users")
    average = rest / small
    plan = [(k, big_size) for k in range(big_users)]
    for i in range(small):
        spread = ((i * 7919) % 1000) / 1000  # deterministic, evenly spread
        plan.append((big_users + i, max(1, int(average * (0.25 + 1.5 * spread)))))
    short = messages - sum(n for _, n in plan)
    key, n = plan[-1]
    plan[-1] = (key, max(1, n + short))
    return plan


def fingerprint(plan: list) -> str:
    digest = hashlib.sha256(json.dumps(plan).encode())
    sources = [REPO / "bench" / "_host_seed.py", REPO / "bench" / "_web_data.py"]
    sources += sorted(REPO.glob("*/migrations/0*.py"))
    for path in sources:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def env_for(db_name: str) -> dict:
    data_dir = CACHE_DIR / db_name
    data_dir.mkdir(parents=True, exist_ok=True)
    return base_env() | {
        "DATABASE_URL": pg_url(db_name),
        "WEBPOP_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "webpop.settings",
        "DEBUG": "false",
        "REDIS_URL": "",
    }


def seeded(db_name: str, plan: list, fresh: bool) -> dict:
    """The seed's JSON, seeding first unless a complete seed of this fingerprint exists."""
    import psycopg

    marker = CACHE_DIR / f"{db_name}.json"
    if not fresh and marker.is_file():
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone():
                print(f"reusing {db_name}", file=sys.stderr)
                return json.loads(marker.read_text())
    marker.unlink(missing_ok=True)
    env = env_for(db_name)
    start = time.perf_counter()
    create_database(db_name)
    run_checked([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env=env)
    seed, _wall = run_json(
        [PYTHON, str(REPO / "bench" / "_host_seed.py"), "--sizes", json.dumps(plan)], env=env, timeout=6 * 3600
    )
    # A live database is vacuumed and analysed by autovacuum; measure that steady state.
    run_checked(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db_name, "-qc", "VACUUM ANALYZE"], env=env, timeout=6 * 3600
    )
    seed["seconds"] = round(time.perf_counter() - start, 1)
    print(f"seeded {db_name}: {seed['messages']:,} messages in {seed['seconds']:.0f} s", file=sys.stderr)
    marker.write_text(json.dumps(seed))  # last: marks the seed complete
    return seed


def measure(db_name: str, username: str, args) -> dict:
    cmd = [PYTHON, str(REPO / "bench" / "_host_measure.py"), "--user", username, "--runs", str(args.runs)]
    cmd += ["--concurrency", str(args.concurrency), "--duration", str(args.duration)]
    result, _wall = run_json(cmd, env=env_for(db_name), timeout=3600)
    return result


def _rounds(host_db: str, alone_db: str, username: str, args) -> tuple[dict, dict]:
    """Each figure's median over ``--rounds`` turns of the host database and the user alone."""
    runs: dict[str, list[dict]] = {host_db: [], alone_db: []}
    for turn in range(args.rounds):
        for name in (host_db, alone_db) if turn % 2 == 0 else (alone_db, host_db):
            runs[name].append(measure(name, username, args))

    def median(results: list[dict]) -> dict:
        figures = {}
        for item, first in results[0].items():
            figures[item] = {
                key: statistics.median(r[item][key] or 0.0 for r in results) for key in first if key != "latencies_ms"
            }
            pooled = sorted(x for r in results for x in r[item].get("latencies_ms", []))
            if pooled:
                figures[item]["p99_ms"] = pooled[min(len(pooled) - 1, int(len(pooled) * 0.99))]
        return figures

    return median(runs[host_db]), median(runs[alone_db])


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0.05 else "–"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--big-users", type=int, default=4)
    parser.add_argument("--big-size", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="host and alone take turns this many times")
    parser.add_argument("--fresh", action="store_true", help="seed afresh even if a kept seed matches")
    parser.add_argument("--drop", action="store_true", help="remove this run's databases at the end")
    args = parser.parse_args()
    if args.big_users < 1:
        raise SystemExit("--big-users must be at least 1")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    plan = sizes(args.users, args.messages, args.big_users, args.big_size)
    big, small = plan[0], plan[args.big_users]
    with Cleanup() as cleanup:
        host_db = f"{DB_PREFIX}_{fingerprint(plan)}"
        alone = {user: f"{DB_PREFIX}_alone_{fingerprint([list(user)])}" for user in (big, small)}
        if args.drop:
            for name in [host_db, *alone.values()]:
                cleanup.add(name, lambda name=name: drop_database(name))
        host_seed = seeded(host_db, [list(u) for u in plan], args.fresh)
        for user, name in alone.items():
            seeded(name, [list(user)], args.fresh)
        print(
            f"\nhost: {len(plan):,} users, {host_seed['messages']:,} messages "
            f"(seeded in {host_seed['seconds']:.0f} s); "
            f"big user {big[1]:,} messages, small user {small[1]:,}; concurrency {args.concurrency}; "
            f"the reference Python loop takes {python_speed_ms():.1f} ms\n"
        )
        head = ["page ms host", "alone", "ratio", "queries ms host", "alone", "ratio", "p99 ms host", "alone", "ratio"]
        print("| user | item | " + " | ".join(head) + " |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, user in (("big", big), ("small", small)):
            username = f"user{user[0]}"
            on_host, by_itself = _rounds(host_db, alone[user], username, args)
            for item, h in on_host.items():
                a = by_itself[item]
                cells = []
                for key in ("page_ms", "queries_ms", "p99_ms"):
                    hv, av = h[key] or 0.0, a[key] or 0.0
                    cells += [f"{hv:.1f}", f"{av:.1f}", _ratio(hv, av)]
                print(f"| {label} ({user[1]:,}) | {item} | " + " | ".join(cells) + " |")
        jobs, _wall = run_json(
            [PYTHON, str(REPO / "bench" / "_host_measure.py"), "--housekeeping"], env=env_for(host_db), timeout=6 * 3600
        )
        # The jobs' rolled-back changes leave dead rows and pages no longer all-visible, which the next
        # run's index-only scans would pay for: vacuum the kept seed back to the state it was measured in.
        run_checked(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", host_db, "-qc", "VACUUM ANALYZE"],
            env=env_for(host_db),
            timeout=6 * 3600,
        )
        per_million = host_seed["messages"] / 1e6
        print("\n| housekeeping job (whole host) | seconds | seconds per million messages |\n|---|---:|---:|")
        for job, seconds in jobs.items():
            print(f"| {job} | {seconds:.2f} | {seconds / per_million:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
