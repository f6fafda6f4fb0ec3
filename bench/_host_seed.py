"""Child of bench/host_scale.py: fill a database with many users' mail, fast, and print one JSON line.

Users and accounts through the ORM; messages as plain tuples through COPY into an unlogged
staging table, then one INSERT … SELECT per slice that builds each search document as the
indexer does (so every row is written once). The message table's secondary indexes are
dropped for the load and built again at the end, exactly as they were (their definitions
are read from pg_indexes first): building an index once is far cheaper than keeping twenty
of them up to date row by row. Rows come in conversations of one to five messages.

Deterministic: a user's rows depend only on their ``key``, so the same user seeded alone in
another database gets the same mail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")

import django  # noqa: E402

django.setup()

from _web_data import DAYS, MONTHS, RARE_EVERY, RARE_WORD, SUBJECTS, WORDS, sender_of  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection  # noqa: E402

from accounts import actions as account_actions  # noqa: E402
from mailbox.models import Message  # noqa: E402

SLICE = 50_000  # rows per COPY + INSERT … SELECT
NEWEST = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
FOLDERS = (("inbox", 0.7), ("archive", 0.25), ("spam", 0.03), ("trash", 0.02))
VARYING = [
    "id", "owner_id", "account_id", "uidl", "subject", "from_name", "from_email", "date", "received_at",
    "message_id", "message_key", "thread_subject", "snippet", "search_text", "seen", "flagged",
    "has_attachments", "folder", "thread_id",
]  # fmt: skip


def user_rows(key: int, n: int, owner_id: int, account_id: int, first_id: int):
    """``n`` rows of the user with ``key``, ids from ``first_id``: tuples in VARYING's order."""
    rng = random.Random(key)
    names, weights = [f for f, _ in FOLDERS], [w for _, w in FOLDERS]
    thread_left, thread_id = 0, None
    for i in range(n):
        pk = first_id + i
        if thread_left == 0:  # conversations of 1-5 messages, each row its own when alone
            thread_left, thread_id = rng.randint(1, 5), pk
        thread_left -= 1
        name, address = sender_of(rng.randrange(480))
        subject = rng.choice(SUBJECTS).format(
            n=rng.randrange(1000, 99999), day=rng.choice(DAYS), month=rng.choice(MONTHS), first=name.split()[0]
        )
        body = rng.choices(WORDS, k=rng.randrange(30, 80))
        if i % RARE_EVERY == 0:
            body.insert(rng.randrange(len(body)), RARE_WORD)
        text = " ".join(body)
        date = NEWEST - dt.timedelta(minutes=20 * i)
        domain = address.split("@")[1]
        yield (
            pk, owner_id, account_id, f"u{key}-{i:07d}", subject, name, address, date, date,
            f"<u{key}-{i}@{domain}>", f"u{key}-{i}@{domain}",
            subject.lower().removeprefix("re: ").removeprefix("fwd: ")[:255], text[:200], text,
            rng.random() < 0.8, rng.random() < 0.05, rng.random() < 0.15, rng.choices(names, weights)[0], thread_id,
        )  # fmt: skip


def _columns():
    fields = [f for f in Message._meta.concrete_fields if f.attname != "search_document"]
    template = Message(owner_id=0, account_id=0, sha256="0" * 64, size=4000, raw_path="00/00/missing", date=NEWEST)
    defaults = {f.attname: f.get_db_prep_save(getattr(template, f.attname), connection) for f in fields}
    return fields, defaults


def load(plan: list[dict]) -> None:
    """Write every user's rows of ``plan`` (dicts with key, size, owner_id, account_id, first_id)."""
    fields, defaults = _columns()
    names = [f.attname for f in fields]
    slots = [VARYING.index(n) if n in VARYING else None for n in names]
    fixed = [defaults[n] for n in names]
    quoted = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS hs_stage")
        cursor.execute("CREATE UNLOGGED TABLE hs_stage (LIKE mailbox_message INCLUDING DEFAULTS)")
        pending = 0

        def flush():
            cursor.execute(
                f"""INSERT INTO mailbox_message ({quoted}, search_document) SELECT {quoted},
                    mailbox_message_document(subject, from_name, from_email, "to", cc, search_text) FROM hs_stage"""
            )
            cursor.execute("TRUNCATE hs_stage")

        copy = None
        for user in plan:
            for row in user_rows(user["key"], user["size"], user["owner_id"], user["account_id"], user["first_id"]):
                if copy is None:
                    copy_cm = cursor.cursor.copy(f"COPY hs_stage ({quoted}) FROM STDIN")
                    copy = copy_cm.__enter__()
                copy.write_row([fixed[k] if s is None else row[s] for k, s in enumerate(slots)])
                pending += 1
                if pending >= SLICE:
                    copy_cm.__exit__(None, None, None)
                    copy, pending = None, 0
                    flush()
        if copy is not None:
            copy_cm.__exit__(None, None, None)
            flush()
        cursor.execute("DROP TABLE hs_stage")


def secondary_indexes() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
               JOIN pg_class c ON c.relname = i.indexname JOIN pg_index x ON x.indexrelid = c.oid
               WHERE i.tablename = 'mailbox_message' AND NOT x.indisprimary"""
        )
        return cursor.fetchall()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", required=True, help="JSON list of [key, messages] per user")
    args = parser.parse_args()
    sizes = json.loads(args.sizes)
    t0 = time.perf_counter()
    User = get_user_model()
    password = make_password("host-Password-1")
    users = User.objects.bulk_create(
        [User(username=f"user{key}", email=f"user{key}@example.org", password=password) for key, _ in sizes]
    )
    plan, next_id = [], 1
    for user, (key, size) in zip(users, sizes, strict=True):
        account = account_actions.create_account(
            user, host="pop.example.net", port=995, security="ssl", username=f"user{key}", password="secret"
        )
        plan.append({"key": key, "size": size, "owner_id": user.id, "account_id": account.id, "first_id": next_id})
        next_id += size
    indexes = secondary_indexes()
    with connection.cursor() as cursor:
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    load(plan)
    loaded = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'")
        for _name, definition in indexes:
            cursor.execute(definition)
        cursor.execute("SELECT setval(pg_get_serial_sequence('mailbox_message', 'id'), %s)", [next_id])
    print(
        json.dumps(
            {
                "users": {str(key): {"username": f"user{key}", "messages": size} for key, size in sizes},
                "messages": next_id - 1,
                "load_seconds": round(loaded - t0, 1),
                "index_seconds": round(time.perf_counter() - loaded, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
