"""The ingest path piece by piece, over a 100 Mbit/s link with a 100 ms round trip.

One real Dovecot (implicit TLS, certificate verified), the standard 2,000 mixed
messages (bench/_corpus.py) and, in front of it, a relay that shapes the
traffic like a household's link to its provider (tests/relay.py). Each run
is a first sync (``sync_account``) of a fresh account into a fresh PostgreSQL
database (a copy of one migrated template) and a fresh store, in a child
process (bench/_ingest_child.py) that reports its wall time, its CPU seconds
(user + system) and its peak RSS. Variants
(``--variants``, comma-separated):

  today           the path as it is (each batch parsed, stored and committed inline)
  fsync           every file and folder fsynced as written (no syncfs, no batch durability)
  fsync-deferred  the batch's files fsynced one by one where syncfs was (the non-Linux path)
  orm             ``bulk_create`` instead of COPY
  simple          both out: fsync per file, bulk_create
  A,B,...         several of the above at once (the combinations listed in VARIANTS)

Variants take turns in each round (the order rotates), ``--rounds`` rounds, so a
change in the shared machine's load weighs on all alike; the table shows each
variant's median run and the load average around the runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _benchutil import Cleanup, base_env, create_database, drop_database, pg_url, run_checked, run_json  # noqa: E402
from _corpus import build_messages  # noqa: E402
from ingest import CHILD, WORK_DIR, scratch_filesystem  # noqa: E402

from tests.dovecot import DovecotServer  # noqa: E402
from tests.relay import Relay  # noqa: E402

# Each variant's pieces taken out of the path (BENCH_INGEST_VARIANT of bench/_ingest_child.py).
VARIANTS = {
    "today": "",
    "fsync": "fsync",
    "fsync-deferred": "fsync-deferred",
    "orm": "orm",
    "simple": "fsync,orm",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # --variants: comma-separated, or semicolon-separated when a variant is a combination ("today;fsync,orm").
    parser.add_argument("--variants", default="today,fsync,fsync-deferred,orm,simple")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rtt-ms", type=float, default=100.0)
    parser.add_argument("--mbit", type=float, default=100.0)
    parser.add_argument("--shared-fs", action="store_true", help="files on the root file system, not a scratch one")
    args = parser.parse_args()
    variants = args.variants.split(";") if ";" in args.variants else args.variants.split(",")
    for name in variants:
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}: one of {', '.join(VARIANTS)}")

    t0 = time.perf_counter()
    messages = build_messages()
    count, corpus_bytes = len(messages), sum(len(m) for m in messages)
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    loads: list[float] = []

    with Cleanup() as cleanup:
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        scratch = None if args.shared_fs else scratch_filesystem(cleanup)
        tmp = Path(tempfile.mkdtemp(prefix="ingest-relay-", dir=scratch or WORK_DIR))
        if scratch is None:
            cleanup.add("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
        server = DovecotServer(tmp / "dovecot")
        cleanup.add("Dovecot", server.close)
        server.start()
        password = "wp-bench-password"
        server.add_user("wp", password)
        for raw in messages:
            server.deliver("wp", raw)
        del messages
        ca = server.ca_file
        relay = Relay(("127.0.0.1", server.pop3s_port), delay=args.rtt_ms / 2000, rate=args.mbit * 1e6 / 8)
        relay.start()
        cleanup.add("relay", relay.stop)

        pid = os.getpid()
        template = f"webpop_ingest_relay_{pid}_template"
        create_database(template)
        cleanup.add("template", lambda: drop_database(template))
        base = base_env() | {
            "DJANGO_SETTINGS_MODULE": "webpop.settings",
            "WEBPOP_POP3_CA_FILE": str(ca),
            "WEBPOP_POP3_ALLOW_PRIVATE": "true",
            "WEBPOP_SYNC_MAX_MESSAGES": "100000",
            "WEBPOP_SYNC_MAX_BYTES": str(64 * 1024**3),
            "LOG_LEVEL": "WARNING",
        }
        run_checked(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            env=base | {"DATABASE_URL": pg_url(template), "WEBPOP_DATA_DIR": str(tmp / "template-data")},
        )
        # Warm Dovecot's index and the page cache (no DELE: nothing changes).
        run_json([sys.executable, CHILD, "raw", str(server.pop3s_port), "wp", password, str(ca), "1"], env=base_env())

        for round_no in range(args.rounds):
            order = variants[round_no % len(variants) :] + variants[: round_no % len(variants)]
            for name in order:
                pieces = VARIANTS[name]
                db = f"webpop_ingest_relay_{pid}_run"
                create_database(db, template=template)
                data = tmp / "data"
                env = base | {"DATABASE_URL": pg_url(db), "WEBPOP_DATA_DIR": str(data)}
                account = run_json([sys.executable, CHILD, "setup", str(relay.port), "wp", password], env=env)[0][
                    "account"
                ]
                env |= {"BENCH_INGEST_VARIANT": pieces}
                load_before = os.getloadavg()[0]
                out, _wall = run_json([sys.executable, CHILD, "sync", str(account)], env=env)
                out["load"] = (load_before + os.getloadavg()[0]) / 2
                loads.append(out["load"])
                drop_database(db)
                shutil.rmtree(data, ignore_errors=True)
                if out["error"] or out["stored"] != count or out["fetched"] != count:
                    raise SystemExit(f"{name}: stored {out['stored']} of {count} (error {out['error']})")
                runs[name].append(out)
                print(
                    f"round {round_no + 1} {name}: {out['seconds']:.2f} s, CPU {out['cpu_seconds']:.2f} s, "
                    f"load {out['load']:.2f}",
                    file=sys.stderr,
                )

    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    first = variants[0]
    print(
        f"{count} messages, {corpus_bytes / count / 1000:.1f} KB average ({corpus_bytes / 1e6:.0f} MB), TLS to "
        f"Dovecot through a relay of {args.mbit:g} Mbit/s each way and {args.rtt_ms:g} ms round trip, PostgreSQL, "
        f"{'a fresh ext4 scratch file system' if scratch else 'the root file system'}. "
        f"{args.rounds} rounds, variants taking turns; medians. Load average (1 min) during the runs: "
        f"{min(loads):.2f}–{max(loads):.2f} on {os.cpu_count()} cores. Ratios against `{first}` (> 1: more).\n"
    )
    print(
        "| variant | first sync s | all runs s | CPU s | CPU ms/message | user / system s | "
        "peak RSS | wall vs first | CPU vs first |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in variants:
        seconds, cpu = median(name, "seconds"), median(name, "cpu_seconds")
        system = median(name, "system_cpu_seconds")
        rss = median(name, "peak_rss_kb") / 1024
        all_runs = " ".join(f"{run['seconds']:.1f}" for run in runs[name])
        print(
            f"| {name} | {seconds:.2f} | {all_runs} | {cpu:.2f} | {cpu / count * 1000:.2f} | "
            f"{cpu - system:.2f} / {system:.2f} | {rss:.0f} MB | {seconds / median(first, 'seconds'):.2f} | "
            f"{cpu / median(first, 'cpu_seconds'):.2f} |"
        )
    print(f"\nScript run time: {time.perf_counter() - t0:.0f} s.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
