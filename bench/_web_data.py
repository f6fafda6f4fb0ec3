"""Many realistic message rows, fast: for bench/web.py and tests/test_scale.py.

Rows are built as ``Message`` model instances (so every field gets its model
default, including fields added later) and written with PostgreSQL's COPY,
which is ~10x faster than ``bulk_create`` for 100,000 rows. Their search
documents are then built in one statement, as the indexer does after a sync
(migration 0009). Every row
points at one of a few real stored raw files (content-addressed storage makes
sharing natural), so the message page can open any of them.

Deterministic: the same ``seed`` gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

FIRST = [
    "Anna", "Ben", "Carla", "David", "Eva", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kemal", "Lena",
    "Marco", "Nadia", "Olaf", "Priya", "Quentin", "Rosa", "Sven", "Tara", "Ulla", "Viktor", "Wen", "Yusuf",
]  # fmt: skip
LAST = [
    "Berger", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ivanova", "Jensen", "Kowalski",
    "Lopez", "Müller", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka", "Weber", "Zhang",
]  # fmt: skip
DOMAINS = [
    "example.net", "mail.example.com", "post.example.de", "shop.example.org", "news.example.io",
    "bank.example.com", "school.example.edu", "club.example.org",
]  # fmt: skip
SUBJECTS = [
    "Invoice {n} for your order", "Re: Meeting on {day}", "Your parcel {n} has shipped", "Weekly newsletter #{n}",
    "Fwd: Photos from {day}", "Reminder: appointment on {day}", "Quarterly report draft v{n}",
    "Re: Re: Holiday plans", "Your statement for {month} is ready", "Welcome to the club, {first}!",
    "Re: Question about ticket {n}", "Security alert: new sign-in", "Minutes of the board meeting {n}",
    "Receipt for payment {n}", "Re: Dinner on {day}?", "Train tickets for {month}",
]  # fmt: skip
WORDS = str.split(
    "please find attached the document we discussed yesterday let me know if you have any questions "
    "thanks again for your help with the project the team will meet next week to review progress "
    "kind regards best wishes see you soon the delivery is expected within three working days "
    "your account balance summary payment due date reference number customer service opening hours "
    "garden concert library football budget schedule kitchen bicycle holiday museum recipe planning"
)
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "March", "May", "July", "September", "November"]
# Rare words: each appears in the body text of exactly every RARE_EVERY-th row (by position).
RARE_WORD = "zanzibarquokka"
RARE_EVERY = 997


@dataclass(frozen=True)
class RawFile:
    """A stored raw message the rows point at."""

    raw_path: str
    sha256: str
    size: int


def sender_of(i: int) -> tuple[str, str]:
    first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
    domain = DOMAINS[(i // 7) % len(DOMAINS)]
    return f"{first} {last}", f"{first.lower()}.{last.lower()}@{domain}".replace("ü", "ue")


def build_rows(
    owner_id: int,
    account_id: int,
    n: int,
    raw_files: list[RawFile],
    *,
    seed: int = 7,
    folders: tuple[tuple[str, float], ...] = (("inbox", 0.7), ("archive", 0.25), ("spam", 0.03), ("trash", 0.02)),
    newest: dt.datetime | None = None,
    uidl_prefix: str = "bulk",
) -> list:
    """``n`` Message instances (unsaved), one every ~20 minutes going back from ``newest``.

    Dates are distinct and strictly decreasing with the position, except every 50th row shares
    its date with the next one, so (date, id) ties are exercised by keyset pagination.
    """
    from mailbox.models import Message

    rng = random.Random(seed)
    newest = newest or dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    folder_names = [f for f, _ in folders]
    weights = [w for _, w in folders]
    rows = []
    for i in range(n):
        name, address = sender_of(rng.randrange(480))
        subject = rng.choice(SUBJECTS).format(
            n=rng.randrange(1000, 99999), day=rng.choice(DAYS), month=rng.choice(MONTHS), first=name.split()[0]
        )
        body_words = rng.choices(WORDS, k=rng.randrange(40, 120))
        if i % RARE_EVERY == 0:
            body_words.insert(rng.randrange(len(body_words)), RARE_WORD)
        body = " ".join(body_words)
        raw = raw_files[i % len(raw_files)]
        step = i - (1 if i % 50 == 1 else 0)  # rows 0/1, 50/51, ... share a date
        date = newest - dt.timedelta(minutes=20 * step)
        rows.append(
            Message(
                owner_id=owner_id,
                account_id=account_id,
                uidl=f"{uidl_prefix}-{i:07d}",
                sha256=raw.sha256,
                size=raw.size,
                raw_path=raw.raw_path,
                subject=subject,
                from_name=name,
                from_email=address,
                to="alice@example.org",
                date=date,
                received_at=date,
                message_id=f"<{uidl_prefix}-{i}@{address.split('@')[1]}>",
                message_key=f"{uidl_prefix}-{i}@{address.split('@')[1]}",
                thread_subject=subject.lower().removeprefix("re: ").removeprefix("re: ").removeprefix("fwd: ")[:255],
                snippet=body[:200],
                search_text=body,
                seen=rng.random() < 0.8,
                flagged=rng.random() < 0.05,
                has_attachments=rng.random() < 0.15,
                folder=rng.choices(folder_names, weights)[0],
            )
        )
    return rows


def copy_rows(rows: list, *, using: str = "default") -> None:
    """Write ``rows`` with COPY (PostgreSQL only), then give each a one-message conversation."""
    from django.db import connections

    from mailbox.models import Message

    connection = connections[using]
    assert connection.vendor == "postgresql", "copy_rows needs PostgreSQL"
    fields = [f for f in Message._meta.concrete_fields if f.attname not in {"id", "search_document"}]
    table = connection.ops.quote_name(Message._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        raw_cursor = cursor.cursor  # psycopg 3
        with raw_cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields])
        cursor.execute(f"UPDATE {table} SET thread_id = id WHERE thread_id IS NULL")
        cursor.execute(
            f"""UPDATE {table} SET search_document =
                mailbox_message_document(subject, from_name, from_email, "to", cc, search_text)
                WHERE search_document IS NULL"""
        )
        cursor.execute(f"ANALYZE {table}")
