"""Web speed: gunicorn (2 sync workers) on PostgreSQL, one user with 100,000 messages.

A throwaway PostgreSQL database and data directory are created, migrated and
filled (bench/_web_seed.py: a few hundred messages stored as the sync engine
stores them, the rest bulk rows via COPY), then ``wrk`` (Debian package
``wrk``; a small threaded Python load generator when it is missing) loads
each URL for ``--duration`` seconds at concurrency 8, logged in with a real
session cookie:

- inbox page 1                 ``/``
- a deep keyset page           ``/?before=<cursor 90% down the inbox>``
- a message alone in its thread ``/message/<id>/`` (viewed once first: HTML cache warm)
- a conversation               ``/message/<id>/`` of a 10-message thread (all read: the opened message
                               expanded, nine on one line each; viewed once first)
- a search                     ``/?q=invoice`` (full-text, ~6% of the rows match)
- the ceiling: a trivial view  ``/healthz`` (small JSON, no session, no query)

Page 1 of a folder, the user's latest conversation and latest search come from the page cache
(webpop/lib/pagecache.py) while nothing they show changes, so the rows above measure a page seen
again (back, reload, the reading pane). The conversation and the search are also loaded with a
parameter no page reads (``?utm_source=bench``), which keeps them out of the cache: those rows
("rendered") are what a first view costs.

Besides requests/s and latency, the table gives the CPU time the gunicorn workers and the
PostgreSQL backends spent per request (from /proc): on a shared machine the throughput
depends on what else runs, the CPU cost of a request much less. ``--app-dir`` serves other
code (e.g. ``git archive`` of an older commit) on the same data, for a before/after table.

Targets: inbox ≥ 40% of the trivial view's requests/s; the inbox, the conversation and a search
("Reading mail"): p99 ≤ 50 ms, app + database CPU ≤ 8 ms per request.
Prints a Markdown table. gunicorn is stopped at the end, also on failure or SIGTERM.

Seeding 100,000 messages takes minutes, so the seeded database and data directory are kept
for the next run (``webpop_bench_web_<fingerprint>`` and ``var/bench-web/<fingerprint>``, with the
keys of the run that seeded, which its session cookie needs): the fingerprint covers the seed code,
the message count and the migrations, so a schema or seed change seeds afresh. ``--fresh`` reseeds
anyway; ``--drop`` removes the cache afterwards; ``--prune`` removes the seeds of other fingerprints
(never by default: a bench run from another checkout may be using them).

    .venv/bin/python bench/web.py [--duration 30] [--messages 100000] [--fresh] [--drop] [--prune]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _benchutil import (  # noqa: E402
    PG_DSN,
    Cleanup,
    base_env,
    children,
    cpu_seconds,
    create_database,
    drop_database,
    pg_url,
    python_speed_ms,
    run_checked,
    stop_group,
)

DB_PREFIX = "webpop_bench_web"
CACHE_DIR = REPO / "var" / "bench-web"
CONCURRENCY = 8
TARGET_INBOX_RATIO = 0.40
# The pages people read mail on: p99 at concurrency 8 and app + database CPU per request.
TARGET_P99_MS = 50.0
TARGET_CPU_MS = 8.0
TARGET_PAGES = ("inbox", "conversation", "search")
# A query parameter no page reads (as links carry them): such a URL is never served from the page cache.
UNKEPT = "utm_source=bench"
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
GUNICORN = str(Path(PYTHON).parent / "gunicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.2)


def fetch(url: str, cookie: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


# --- load ------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def load_wrk(url: str, cookie: str | None, duration: int) -> dict:
    cmd = ["wrk", "-t2", f"-c{CONCURRENCY}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "requests": requests,
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
        "tool": "wrk",
    }


def load_python(url: str, cookie: str | None, duration: int) -> dict:
    """Fallback: CONCURRENCY threads with keep-alive connections. Slower than wrk; fine for ratios."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[list[float]] = [[] for _ in range(CONCURRENCY)]
    bad = [0] * CONCURRENCY
    stop_at = time.perf_counter() + duration

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        headers = {"Cookie": cookie} if cookie else {}
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            latencies[k].append((time.perf_counter() - start) * 1000)
            if response.status >= 400:
                bad[k] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(k,)) for k in range(CONCURRENCY)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    all_ms = sorted(x for chunk in latencies for x in chunk)
    quantiles = statistics.quantiles(all_ms, n=100)
    return {
        "rps": len(all_ms) / elapsed,
        "p50": quantiles[49],
        "p99": quantiles[98],
        "requests": len(all_ms),
        "non2xx": sum(bad),
        "socket_errors": "",
        "tool": "python",
    }


# --- CPU spent per request ------------------------------------------------------------------
# The machine may be shared: requests/s and latencies then depend on what else runs. The CPU time
# the gunicorn workers and the database backends spend per request depends much less on that.


def _cpu(pid: int) -> float | None:
    try:
        return cpu_seconds(pid)
    except OSError:
        return None  # gone


def backend_pids(db_name: str) -> list[int]:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [db_name]).fetchall()
    return [row[0] for row in rows]


class CpuMeter:
    """CPU seconds used by a changing set of processes while a block runs.

    Database connections come and go (CONN_MAX_AGE), so the process list is sampled every
    half second and each process's last reading kept; a process gone before its last
    sample loses under half a second of its time.
    """

    def __init__(self, list_pids) -> None:
        self.list_pids = list_pids
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()

    def _sample(self, first: bool = False) -> None:
        for pid in self.list_pids():
            used = _cpu(pid)
            if used is not None:
                if first:
                    self.start[pid] = used
                self.last[pid] = used

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self._sample(first=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return sum(used - self.start.get(pid, 0.0) for pid, used in self.last.items())


# --- the seeded database, cached between runs ------------------------------------------------


def fingerprint(messages: int) -> str:
    """Changes whenever the seeded data would: seed code, message count, any migration."""
    digest = hashlib.sha256(str(messages).encode())
    sources = [REPO / "bench" / "_web_seed.py", REPO / "bench" / "_web_data.py"]
    sources += sorted(REPO.glob("*/migrations/0*.py"))
    for path in sources:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


# The seed's keys, kept beside it: its session cookie (and the accounts' passwords) only work with the keys
# of the run that seeded, and every run has keys of its own (_benchutil.base_env).
KEY_FILES = {"SECRET_KEY": "secret_key", "WEBPOP_ENCRYPTION_KEYS": "encryption_keys"}


def seed_keys(data_dir: Path) -> dict[str, str]:
    return {name: (data_dir / file).read_text().strip() for name, file in KEY_FILES.items()}


def cached_seed(db_name: str, data_dir: Path) -> dict | None:
    """The seed's JSON if a complete earlier seed of this fingerprint exists (with its keys)."""
    import psycopg

    if not (data_dir / "seed.json").is_file() or not all((data_dir / f).is_file() for f in KEY_FILES.values()):
        return None
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone():
            return None
    return json.loads((data_dir / "seed.json").read_text())


def drop_stale_caches(keep: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [DB_PREFIX + "%"])]
    for name in names:
        if name != keep:
            drop_database(name)
    if CACHE_DIR.is_dir():
        for path in CACHE_DIR.iterdir():
            if path.name != keep.removeprefix(DB_PREFIX + "_"):
                shutil.rmtree(path, ignore_errors=True)


def seed_database(db_name: str, data_dir: Path, env: dict, messages: int) -> dict:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    for name, file in KEY_FILES.items():
        (data_dir / file).write_text(env[name])
    create_database(db_name)
    run_checked([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env=env)
    seed_out = run_checked(
        [PYTHON, str(REPO / "bench" / "_web_seed.py"), "--messages", str(messages)], env=env, timeout=900
    )
    seed = json.loads([line for line in seed_out.splitlines() if line.startswith("{")][-1])
    # A live database is vacuumed and analysed by autovacuum; a freshly loaded one is not, and its
    # index-only scans then visit the heap for every row. Measure the steady state.
    run_checked(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db_name, "-qc", "VACUUM ANALYZE"], env=env)
    (data_dir / "seed.json").write_text(json.dumps(seed))  # written last: marks the seed complete
    return seed


# --- main --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per URL (default 30)")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk exists")
    parser.add_argument(
        "--app-dir",
        type=Path,
        default=REPO,
        help="serve the code in this directory (e.g. `git archive` of an older commit, for a before/after "
        "comparison on the same data); default: this checkout",
    )
    parser.add_argument("--fresh", action="store_true", help="seed afresh even if a cached seed matches")
    parser.add_argument("--drop", action="store_true", help="remove the seeded database and data dir at the end")
    parser.add_argument("--prune", action="store_true", help="remove the cached seeds of other fingerprints first")
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help="profile the views in-process (queries, EXPLAIN ANALYZE, cProfile) after the load: "
        "auto = only when a target is missed (default)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset of inbox,deep,message,conversation,search "
        "(the trivial view always runs: the ratios need it)",
    )
    parser.add_argument(
        "--redis-db",
        type=int,
        default=11,
        help="Redis database for the served app's cache (emptied first): deployments run with REDIS_URL",
    )
    args = parser.parse_args()
    load = load_python if args.python_load or not shutil.which("wrk") else load_wrk

    with Cleanup() as cleanup:
        key = fingerprint(args.messages)
        db_name, data_dir = f"{DB_PREFIX}_{key}", CACHE_DIR / key
        env = base_env() | {
            "DATABASE_URL": pg_url(db_name),
            "WEBPOP_DATA_DIR": str(data_dir),
            "DJANGO_SETTINGS_MODULE": "webpop.settings",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
        }
        run_checked(["redis-cli", "-n", str(args.redis_db), "FLUSHDB"], env=env)
        if args.prune:
            drop_stale_caches(keep=db_name)
        if args.drop:
            cleanup.add("database", lambda: drop_database(db_name))
            cleanup.add("data dir", lambda: shutil.rmtree(data_dir, ignore_errors=True))
        seed = None if args.fresh else cached_seed(db_name, data_dir)
        if seed is None:
            t0 = time.perf_counter()
            seed = seed_database(db_name, data_dir, env, args.messages)
            took = time.perf_counter() - t0
            print(
                f"seeded {seed['messages']:,} messages ({seed['inbox']:,} in the inbox) in {took:.0f} s",
                file=sys.stderr,
            )
        else:
            env |= seed_keys(data_dir)
            print(f"reusing the seeded database {db_name} ({seed['messages']:,} messages)", file=sys.stderr)

        port = free_port()
        gunicorn = subprocess.Popen(
            [GUNICORN, "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning", "webpop.wsgi"],
            cwd=args.app_dir,
            env=env,
            start_new_session=True,
        )
        cleanup.add("gunicorn", lambda: stop_group(gunicorn))
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz")

        cookie = f"sessionid={seed['sessionid']}"
        targets = [
            ("inbox", "inbox page 1", "/", cookie),
            ("deep", f"deep keyset page (row {seed['deep_position']:,})", f"/?before={seed['deep_cursor']}", cookie),
            ("message", "message alone in its thread", f"/message/{seed['message_id']}/", cookie),
            ("conversation", "conversation of 10", f"/message/{seed['conversation_id']}/", cookie),
            # The same page built on every request: a parameter the page ignores keeps it out of the page cache.
            (
                "conversation-rendered",
                "conversation of 10, rendered",
                f"/message/{seed['conversation_id']}/?{UNKEPT}",
                cookie,
            ),
            ("search", f"search `{seed['search_word']}`", f"/?q={seed['search_word']}", cookie),
            (
                "search-rendered",
                f"search `{seed['search_word']}`, rendered",
                f"/?q={seed['search_word']}&{UNKEPT}",
                cookie,
            ),
            ("trivial", "trivial view (/healthz)", "/healthz", None),
        ]
        only = {name for name in args.only.split(",") if name}
        unknown = only - {name for name, *_rest in targets}
        if unknown:
            raise SystemExit(f"--only: unknown {', '.join(sorted(unknown))}")
        if only:
            targets = [t for t in targets if t[0].split("-")[0] in only or t[0] == "trivial"]
        # Check every URL answers 200 for this session (not a login redirect) and warm caches:
        # the message page and its HTML body fill the sanitized-HTML cache on first view.
        for _name, label, path, ck in targets:
            status, _body = fetch(base + path, ck)
            if status != 200:
                raise RuntimeError(f"{label}: GET {path} answered {status}, not 200")
        fetch(f"{base}/message/{seed['message_id']}/body/", cookie)
        for _ in range(3):  # both workers, warm imports and template caches
            for _name, _label, path, ck in targets:
                fetch(base + path, ck)

        results = []
        for name, label, path, ck in targets:
            print(f"loading {label} for {args.duration} s …", file=sys.stderr)
            with CpuMeter(lambda: children(gunicorn.pid)) as app, CpuMeter(lambda: backend_pids(db_name)) as db:
                result = load(base + path, ck, args.duration)
            result["app_cpu_ms"] = app.seconds * 1000 / max(result["requests"], 1)
            result["db_cpu_ms"] = db.seconds * 1000 / max(result["requests"], 1)
            results.append((name, label, result))

        by_name = {name: result for name, _label, result in results}
        ceiling = by_name["trivial"]["rps"]
        inbox = by_name.get("inbox")
        ratio = inbox["rps"] / ceiling if inbox and ceiling else None
        # (label, p99, app + db CPU) of each target page that ran.
        judged = [
            (label, r["p99"], r["app_cpu_ms"] + r["db_cpu_ms"]) for name, label, r in results if name in TARGET_PAGES
        ]
        missed = (ratio is not None and ratio < TARGET_INBOX_RATIO) or any(
            p99 > TARGET_P99_MS or cpu > TARGET_CPU_MS for _label, p99, cpu in judged
        )
        profile = None
        if args.profile == "always" or (args.profile == "auto" and missed):
            stop_group(gunicorn)  # the profile runs alone
            urls = [(label, path) for _name, label, path, ck in targets if ck]
            spec = {"sessionid": seed["sessionid"], "urls": urls}
            profile = run_checked([PYTHON, str(REPO / "bench" / "_web_profile.py"), json.dumps(spec)], env=env)
    tool = results[0][2]["tool"]
    print(
        f"\n### webpop web: gunicorn {args.workers} sync workers, PostgreSQL, {seed['messages']:,} messages, "
        f"{tool} {args.duration} s × concurrency {CONCURRENCY}"
        + (f" (code served from {args.app_dir})" if args.app_dir != REPO else "")
        + "\n"
    )
    print(f"Machine speed: the reference Python loop takes {python_speed_ms():.1f} ms (bench/_benchutil.py).\n")
    print("| URL | requests/s | p50 ms | p99 ms | requests | non-2xx | app CPU ms/req | db CPU ms/req |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for _name, label, r in results:
        print(
            f"| {label} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['requests']:,} | {r['non2xx']} "
            f"| {r['app_cpu_ms']:.2f} | {r['db_cpu_ms']:.2f} |"
        )
    print()
    if ratio is not None:
        met = "met" if ratio >= TARGET_INBOX_RATIO else "NOT met"
        print(f"- inbox / trivial view requests/s: **{ratio:.0%}** (target ≥ {TARGET_INBOX_RATIO:.0%}: {met})")
    for label, p99, cpu in judged:
        met = "met" if p99 <= TARGET_P99_MS and cpu <= TARGET_CPU_MS else "NOT met"
        print(
            f"- {label}: p99 **{p99:.1f} ms**, app + db CPU **{cpu:.2f} ms/request** "
            f"(targets ≤ {TARGET_P99_MS:.0f} ms and ≤ {TARGET_CPU_MS:.0f} ms: {met})"
        )
    errors = [label for _name, label, r in results if r["non2xx"] or r["socket_errors"]]
    if errors:
        print(f"- errors during load: {', '.join(errors)}")
    if profile:
        print("\n### Profile (in-process, one request at a time)\n" + profile)
    # Missed targets are reported in the table; only a broken run fails.
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
