"""Child of bench/web.py: fill the throwaway database, print what the load needs as one JSON line.

One user with ``--messages`` messages in one account: ``--real`` of them are stored as the sync
engine stores them (raw file, HTML + text parts, so the message page has a body and an HTML
cache), the rest are bulk rows (bench/_web_data.py) pointing at those raw files.
"""

from __future__ import annotations

import argparse
import email.policy
import hashlib
import json
import os
import sys
import time
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")

import django  # noqa: E402

django.setup()

from _web_data import RawFile, build_rows, copy_rows, sender_of  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402

from accounts import actions  # noqa: E402
from mailbox import listing, mime, store, threads  # noqa: E402
from mailbox.models import Folder, Message  # noqa: E402

SEARCH_WORD = "invoice"


def real_message(i: int) -> bytes:
    name, address = sender_of(i)
    msg = EmailMessage()
    msg["From"] = f"{name} <{address}>"
    msg["To"] = "alice@example.org"
    msg["Subject"] = f"Invoice {1000 + i} and the garden concert programme"
    msg["Date"] = f"Sun, 01 Nov 2026 {12 + i // 60 % 10:02d}:{i % 60:02d}:00 +0000"
    msg["Message-ID"] = f"<real-{i}@example.net>"
    text = f"Hello Alice,\n\nplease find the programme below. Invoice {1000 + i}.\n\nRegards,\n{name}\n"
    msg.set_content(text)
    rows = "".join(f"<tr><td>Item {k}</td><td style='color:#335'>{k * 3}.00 EUR</td></tr>" for k in range(12))
    msg.add_alternative(
        f"<html><body><h1 style='font-family:sans-serif'>Programme</h1><p>Hello <b>Alice</b>,</p>"
        f"<table>{rows}</table><p><a href='https://example.net/p/{i}'>Details</a></p>"
        f"<img src='https://tracker.example.net/{i}.gif' width=1 height=1></body></html>",
        subtype="html",
    )
    return msg.as_bytes(policy=email.policy.SMTP)


CONVERSATION = 10


def conversation_message(n: int) -> bytes:
    """The ``n``-th message of a 10-message conversation: replies quoting the one before, plain and HTML."""
    msg = EmailMessage()
    name, address = sender_of(n)
    msg["From"] = f"{name} <{address}>"
    msg["To"] = "alice@example.org"
    msg["Subject"] = "Garden concert: the seating plan" if n == 0 else "Re: Garden concert: the seating plan"
    msg["Date"] = f"Sat, 31 Oct 2026 {8 + n:02d}:15:00 +0000"
    msg["Message-ID"] = f"<concert-{n}@example.net>"
    if n:
        msg["In-Reply-To"] = f"<concert-{n - 1}@example.net>"
        msg["References"] = " ".join(f"<concert-{k}@example.net>" for k in range(n))
    text = (
        f"Hello all,\n\nrow {n + 1} is taken by the choir; the rest of the plan stands as discussed. "
        "Chairs arrive at noon, the stage at two.\n\n"
        f"On Saturday {name} wrote:\n> Where do the choir sit?\n> And the string quartet?\n\n-- \n{name}\n"
    )
    msg.set_content(text)
    if n % 2:  # every other one is HTML mail too
        msg.add_alternative(f"<p>Hello all,</p><p>row {n + 1} is taken by the choir.</p>", subtype="html")
    return msg.as_bytes(policy=email.policy.SMTP)


def store_real(account, raw: bytes, uidl: str) -> Message:
    with store.temp_file() as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    stored = store.commit_raw(Path(fh.name), expected_size=len(raw), expected_sha256=hashlib.sha256(raw).hexdigest())
    message = store.save_message(account, uidl, stored, mime.parse_bytes(raw))
    assert message is not None
    return message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--real", type=int, default=300)
    args = parser.parse_args()

    started = time.perf_counter()
    user = get_user_model().objects.create_user("alice", "alice@example.org", "alice-Password-1")
    account = actions.create_account(
        user, host="pop.example.net", port=995, security="ssl", username="alice", password="secret", policy="keep"
    )
    real = [store_real(account, real_message(i), f"real-{i:04d}") for i in range(args.real)]
    real += [store_real(account, conversation_message(n), f"concert-{n}") for n in range(CONVERSATION)]
    threads.assign(real)
    raw_files = [RawFile(m.raw_path, m.sha256, m.size) for m in real]
    # The bulk rows are older than the real ones, so the real ones lead the inbox's first page.
    oldest_real = min(m.date for m in real)
    rows = build_rows(user.id, account.id, args.messages - args.real, raw_files, newest=oldest_real)
    copy_rows(rows)
    seeded = time.perf_counter() - started

    inbox = Message.objects.filter(owner=user, folder=Folder.INBOX).order_by("-date", "-id")
    total_inbox = inbox.count()
    deep = inbox.only("id", "date")[int(total_inbox * 0.9)]  # one-off OFFSET, to find a cursor far down
    viewed = Message.objects.filter(owner=user, folder=Folder.INBOX, uidl__startswith="real-").order_by("id").first()
    concert = Message.objects.filter(owner=user, uidl=f"concert-{CONVERSATION - 1}").get()
    assert Message.objects.filter(owner=user, thread_id=concert.thread_id).count() == CONVERSATION
    client = Client()
    client.force_login(user)
    print(
        json.dumps(
            {
                "user": user.id,
                "messages": Message.objects.filter(owner=user).count(),
                "inbox": total_inbox,
                "deep_cursor": listing.encode(deep),
                "deep_position": int(total_inbox * 0.9),
                "message_id": viewed.id,
                "conversation_id": concert.id,
                "search_word": SEARCH_WORD,
                "search_hits": Message.objects.filter(owner=user, subject__icontains=SEARCH_WORD).count(),
                "sessionid": client.cookies["sessionid"].value,
                "seed_seconds": round(seeded, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
