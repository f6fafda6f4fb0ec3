"""``manage.py verifystore`` over 10,000 stored messages: files and megabytes hashed per second.

A throwaway PostgreSQL database is created and migrated; a mail store under ``var/`` gets
``--messages`` raw messages (sizes drawn from a log-normal distribution around 20 KB, as
mail is: mostly small, some large) and one attachment file for every fifth message, with
their rows, as the sync engine writes them. Then the real command runs as a child process,
twice per ``--jobs`` value: once with the store's files dropped from the page cache
(``posix_fadvise(DONTNEED)`` on these files only, so it reads from the disk) and once warm.

    .venv/bin/python bench/verifystore.py [--messages 10000] [--jobs 1 4] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _benchutil import Cleanup, base_env, create_database, drop_database, pg_url, run_checked  # noqa: E402

DB = "webpop_bench_verifystore"


def seed(mail_dir: Path, count: int, rng: random.Random) -> tuple[int, int]:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from accounts.models import MailAccount
    from mailbox import store
    from mailbox.models import Attachment, Message

    owner = get_user_model().objects.create_user("bench-owner", "owner@example.org", "x")
    account = MailAccount(owner=owner, host="pop.example.org", port=995, username="owner", policy="keep")
    account.set_password("x")
    account.save()
    now = timezone.now()
    files = total = 0
    messages, blobs = [], []
    for i in range(count):
        size = min(int(rng.lognormvariate(9.9, 1.0)), 5_000_000)  # median ~20 KB
        data = f"Subject: message {i}\r\n\r\n".encode() + rng.randbytes(size)
        sha = hashlib.sha256(data).hexdigest()
        path = mail_dir / store.raw_relpath(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files, total = files + 1, total + len(data)
        messages.append(Message(owner=owner, account=account, uidl=f"u{i}", sha256=sha, size=len(data),
                                raw_path=store.raw_relpath(sha), date=now, subject=f"message {i}"))  # fmt: skip
        if i % 5 == 0:
            blob = rng.randbytes(min(int(rng.lognormvariate(11.5, 1.0)), 10_000_000))  # median ~100 KB
            blob_sha = hashlib.sha256(blob).hexdigest()
            blob_path = mail_dir / store.blob_relpath(blob_sha)
            blob_path.parent.mkdir(parents=True, exist_ok=True)
            blob_path.write_bytes(blob)
            files, total = files + 1, total + len(blob)
            blobs.append((i, blob_sha, len(blob)))
    Message.objects.bulk_create(messages, batch_size=2000)
    Attachment.objects.bulk_create(
        [Attachment(message=messages[i], filename="a.bin", content_type="application/octet-stream", size=size,
                    sha256=sha, stored_path=store.blob_relpath(sha)) for i, sha, size in blobs],
        batch_size=2000,
    )  # fmt: skip
    return files, total


def drop_from_cache(mail_dir: Path) -> None:
    os.sync()
    for path in mail_dir.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--keep", action="store_true", help="keep the database and the store afterwards")
    args = parser.parse_args()

    with Cleanup() as cleanup:
        env = base_env()
        data_dir = REPO / "var" / "bench-verifystore"
        mail_dir = data_dir / "mail"
        if mail_dir.exists():
            run_checked(["rm", "-rf", str(mail_dir)], env=env)
        data_dir.mkdir(parents=True, exist_ok=True)
        env.update(DATABASE_URL=pg_url(DB), WEBPOP_DATA_DIR=str(data_dir), DEBUG="0")
        create_database(DB)
        if not args.keep:
            cleanup.add("drop database", lambda: drop_database(DB))
            cleanup.add("remove the store", lambda: run_checked(["rm", "-rf", str(mail_dir)], env=env))
        run_checked([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=REPO)
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "webpop.settings"
        import django

        django.setup()
        started = time.perf_counter()
        files, total = seed(mail_dir, args.messages, random.Random(20))
        print(f"seeded {files} files, {total / 1e6:.0f} MB in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        print(f"{args.messages:,} messages: {files:,} files, {total / 1e6:,.0f} MB; load {os.getloadavg()[0]:.2f}")
        print("| jobs | page cache | seconds | files/s | MB/s |")
        print("|---:|---|---:|---:|---:|")
        for jobs in args.jobs:
            for cache in ("cold", "warm"):
                if cache == "cold":
                    drop_from_cache(mail_dir)
                t0 = time.perf_counter()
                out = run_checked(
                    [sys.executable, "manage.py", "verifystore", "--quiet", "--jobs", str(jobs)], env=env, cwd=REPO
                )
                seconds = time.perf_counter() - t0
                assert f"checked {files} files, {total} bytes" in out and "0 missing, 0 corrupt" in out, out
                print(f"| {jobs} | {cache} | {seconds:.2f} | {files / seconds:,.0f} | {total / 1e6 / seconds:,.0f} |")
        print(f"load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
