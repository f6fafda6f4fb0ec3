"""Child process of bench/spam.py: webpop's scan sweep, as a worker runs it, until an account's mail is judged.

    python bench/_spam_child.py scan ACCOUNT_ID COUNT      (Django env set by the parent)
    python bench/_spam_child.py hook ACCOUNT_ID

Runs ``spam.scanning.scan_due`` in a loop (waiting a second when nothing is due, as the ingest
it runs beside is still storing) until the account has COUNT messages and none waits for its
scan. Prints one JSON line: what was judged, rspamd's and the requests' summed time, and this
process's CPU time (webpop's side of the cost).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _benchutil import own_cpu_seconds  # noqa: E402

# Nothing due: look again after this long. A worker's sweep runs once a beat tick (30 s; 1 s in the
# tests) or when a sync wakes it, so this is already far more often than in production.
POLL_SECONDS = 1.0


def _cpu_seconds() -> float:
    return sum(own_cpu_seconds())


def scan(account_id: int, count: int) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")
    import django

    django.setup()
    from mailbox.models import Message
    from spam import health, scanning
    from spam.models import PendingScan

    Message.objects.exists()  # connected, as a worker is
    sys.stdout.write("ready\n")  # the parent starts the sync now: Python's and Django's start-up are behind us
    sys.stdout.flush()

    totals = health.Counts()
    judged = spam = 0
    samples = []  # (wall clock, CPU seconds) at each turn of the loop
    first = last = None
    cpu_start = _cpu_seconds()
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        samples.append((time.time(), _cpu_seconds()))
        started = time.perf_counter()
        report = scanning.scan_due()
        if report.judged or report.failed:
            first = started if first is None else first
            last = time.perf_counter()
            judged += report.judged
            spam += report.spam
            totals.add(report.counts)
            continue
        if report.unavailable:
            raise SystemExit(f"rspamd unavailable: {report.unavailable}")
        if Message.objects.filter(account_id=account_id).count() >= count and not PendingScan.objects.exists():
            break
        time.sleep(POLL_SECONDS)
    return {
        "judged": judged,
        "spam": spam,
        "failed": totals.failed,
        "rspamd_scans": totals.rspamd_scans,
        "rspamd_seconds": totals.rspamd_seconds,
        "request_seconds": totals.request_seconds,
        "cpu_seconds": _cpu_seconds() - cpu_start,
        "busy_seconds": (last - first) if first is not None else 0.0,
        "finished_at": time.time(),
        "samples": samples,
    }


def hook(account_id: int, batch: int = 100) -> dict:
    """The ingest hook alone: queueing the scans of the account's stored mail again, a sync batch at a time.

    Each batch in its own transaction, as the sync commits one: ``spam.queue.scan_later`` timed
    inside it (the rows written before by the sync are removed first, outside the timing).
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")
    import django

    django.setup()
    from django.db import transaction

    from accounts.models import MailAccount
    from mailbox.models import Message
    from spam import queue
    from spam.models import PendingScan

    account = MailAccount.objects.get(id=account_id)
    messages = list(Message.objects.filter(account=account).order_by("id"))
    PendingScan.objects.all().delete()
    seconds = 0.0
    for start in range(0, len(messages), batch):
        chunk = messages[start : start + batch]
        with transaction.atomic():
            began = time.perf_counter()
            queue.scan_later(account, chunk)
            seconds += time.perf_counter() - began
    return {"messages": len(messages), "seconds": seconds}


def main(argv: list[str]) -> None:
    job, args = argv[0], argv[1:]
    if job == "scan":
        out = scan(int(args[0]), int(args[1]))
    elif job == "hook":
        out = hook(int(args[0]))
    else:
        raise SystemExit(f"unknown job {job!r}")
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
