"""Address suggestions with 10,000 contacts: ``/contacts/suggest/?q=`` in-process through Django's test client.

A throwaway PostgreSQL database is created and migrated; one user gets 10,000 contacts (and a
second user 10,000 more, so the owner filter has work to do), each with one to three addresses
and the search keys contacts/search.py writes. Then every query below is asked ``--rounds``
times (after a warm-up), logged in, through the whole Django stack (middleware, session, view,
JSON). Per query: p50 and p99 latency, the app's CPU per request (this process) and the
PostgreSQL backend's CPU per request (from /proc of the connection's backend). Ends with the
query plan of one suggestion, to show the prefix index is used.

Target (issue 16): p99 <= 20 ms. Prints a Markdown table.

    .venv/bin/python bench/contacts.py [--contacts 10000] [--rounds 300] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _benchutil import Cleanup, base_env, cpu_seconds, create_database, drop_database, pg_url, run_checked  # noqa: E402

DB = "webpop_bench_contacts"
QUERIES = [
    "m",  # one letter: the widest prefix
    "ma",
    "mül",  # accent-folded: müller, muller
    "schm",
    "anna",
    "anna sch",  # two words: both must match
    "zoë yam",  # two words, few contacts have both
    "j.wagner",
    "gmail",  # a mail domain: thousands of contacts share it
    "zz-no-match",
]
FIRST = ["Anna", "Jürgen", "Maria", "Mark", "Lena", "Jonas", "Sophie", "Lukas", "Zoë", "Mia", "Ben", "Emma",
         "Paul", "Hannah", "Felix", "Marta", "Ömer", "Chloé", "José", "Ingrid", "Kenji", "Priya", "Matteo"]  # fmt: skip
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
        "Martin", "García", "Rossi", "Nowak", "Dubois", "Kowalski", "Jensen", "Yamada", "Öztürk", "Smith"]  # fmt: skip
DOMAINS = ["gmail.com", "web.de", "gmx.de", "example.org", "firma.example", "posteo.de", "uni-bonn.de", "mail.ru"]


def seed(owner_id: int, count: int, rng: random.Random) -> None:
    from contacts import search
    from contacts.models import Contact, ContactEmail, ContactKey

    now_days = time.time() / 86400
    contacts = []
    for _ in range(count):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        rank = search.rank_after(None, 1.0, now_days - rng.uniform(0, 730))
        for _ in range(rng.randint(0, 4)):
            rank = search.rank_after(rank, 1.0, now_days - rng.uniform(0, 365))
        contacts.append(Contact(owner_id=owner_id, name=name, rank=rank, times_contacted=1))
    Contact.objects.bulk_create(contacts, batch_size=2000)
    emails, keys = [], []
    for i, contact in enumerate(contacts):
        first, last = (search.normalize(w) for w in contact.name.split())
        addresses = [f"{first[0]}.{last}{i}@{rng.choice(DOMAINS)}"]
        addresses += [f"{first}{i}.{n}@{rng.choice(DOMAINS)}" for n in range(rng.randint(0, 2))]
        for position, address in enumerate(addresses):
            emails.append(ContactEmail(contact=contact, owner_id=owner_id, address=address,
                                       address_key=address.lower(), position=position,
                                       domain_skeleton=ContactEmail.skeleton_of(address)))  # fmt: skip
        keys += [
            ContactKey(owner_id=owner_id, contact=contact, key=k) for k in search.keys_for(contact.name, addresses)
        ]
    ContactEmail.objects.bulk_create(emails, batch_size=5000)
    ContactKey.objects.bulk_create(keys, batch_size=5000)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with Cleanup() as cleanup:
        env = base_env()
        data_dir = REPO / "var" / "bench-contacts"
        data_dir.mkdir(parents=True, exist_ok=True)
        env.update(DATABASE_URL=pg_url(DB), WEBPOP_DATA_DIR=str(data_dir), DEBUG="0", ALLOWED_HOSTS="testserver")
        create_database(DB)
        if not args.keep:
            cleanup.add("drop database", lambda: drop_database(DB))
        run_checked([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=REPO)
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "webpop.settings"
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client
        from django.test.utils import setup_test_environment

        setup_test_environment()  # the test client's in-process requests
        users = get_user_model()
        owner = users.objects.create_user("bench-owner", "owner@example.org", "x")
        other = users.objects.create_user("bench-other", "other@example.org", "x")
        started = time.perf_counter()
        seed(owner.id, args.contacts, random.Random(16))
        seed(other.id, args.contacts, random.Random(61))
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # as autovacuum leaves a settled table: index-only scans stay so
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        print(f"seeded 2 x {args.contacts} contacts in {time.perf_counter() - started:.1f} s", file=sys.stderr)

        client = Client()
        client.force_login(owner)
        rows, everything = [], []
        for q in QUERIES:
            for _ in range(20):  # warm-up
                client.get("/contacts/suggest/", {"q": q})
            times = []
            cpu0, db0 = time.process_time(), cpu_seconds(pid)
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                response = client.get("/contacts/suggest/", {"q": q})
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.status_code
            app_cpu = (time.process_time() - cpu0) / args.rounds * 1000
            db_cpu = (cpu_seconds(pid) - db0) / args.rounds * 1000
            found = len(response.json()["results"])
            everything += times
            rows.append((q, found, statistics.median(times), pct(times, 0.99), app_cpu, db_cpu))

        print(
            f"\n{args.contacts:,} contacts of one user (+{args.contacts:,} of another), {args.rounds} requests each\n"
        )
        print("| query | results | p50 ms | p99 ms | app CPU ms/req | DB CPU ms/req |")
        print("|---|---:|---:|---:|---:|---:|")
        for q, found, p50, p99, app_cpu, db_cpu in rows:
            print(f"| `{q}` | {found} | {p50:.2f} | {p99:.2f} | {app_cpu:.2f} | {db_cpu:.2f} |")
        print(f"| **all** | | {statistics.median(everything):.2f} | {pct(everything, 0.99):.2f} | | |")
        from contacts.models import ContactKey

        plan_qs = ContactKey.objects.filter(owner_id=owner.id, key__startswith="schm").values("contact_id")
        print("\nPlan of the key lookup (`schm`):\n")
        print("```\n" + plan_qs.explain() + "\n```")


if __name__ == "__main__":
    main()
