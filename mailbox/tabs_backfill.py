"""Mail stored before Inbox tabs existed, sorted into them in the background (mailbox/tabs.py sorts new mail).

The migration that added tabs left one TabBackfill row: every message with an id below its
``below_id`` is still to be sorted. The beat sweep (tasks.sort_into_tabs) claims the row with a
lease, sorts batches newest first from each raw file's header, and moves ``below_id`` down after
each batch; the row is deleted when nothing is left. A backfill rather than sorting on view: each
tab's list and unread count are index range scans over the stored tab.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.utils import timezone

from webpop.lib import pagecache

from . import categories, mime, store, tabs
from .models import Folder, Message, SenderCategory, TabBackfill

# What is read of a raw file to find its header: a header longer than this is cut (bounded work).
HEAD_BYTES = 64 * 1024
BATCH = 500
LEASE = dt.timedelta(minutes=5)


def _headers(relpath: str) -> dict[str, str]:
    try:
        with store.open_file(relpath) as fh:
            head = fh.read(HEAD_BYTES)
    except (OSError, ValueError):
        return {}
    end = min((i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0), default=len(head))
    return mime.parse(head[:end] + b"\r\n\r\n").category_headers


def _claim(now: dt.datetime) -> TabBackfill | None:
    row = TabBackfill.objects.order_by("id").first()
    if row is None:
        return None
    claimed = TabBackfill.objects.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now), id=row.id).update(
        lease_until=now + LEASE
    )
    if claimed != 1:
        return None  # another worker has it
    row.refresh_from_db()
    return row


def backfill(batches: int = 20, batch: int = BATCH) -> int:
    """Sort up to ``batches`` batches of mail stored before tabs, newest first; the messages looked at.

    Claimed with a lease, so one worker does it at a time and a crashed one is taken over; the row's
    ``below_id`` moves down after each batch commits, so work done stays done. A message whose
    sender the user has already chosen a tab for is left as that choice made it.
    """
    row = _claim(timezone.now())
    if row is None:
        return 0
    done = 0
    for _batch in range(batches):
        messages = list(
            Message.objects.filter(id__lt=row.below_id)
            .exclude(folder=Folder.PURGED)
            .order_by("-id")
            .values_list("id", "owner_id", "from_email", "raw_path")[:batch]
        )
        if not messages:
            TabBackfill.objects.filter(id=row.id).delete()
            return done
        _sort(messages)
        row.below_id = messages[-1][0]
        done += len(messages)
        TabBackfill.objects.filter(id=row.id).update(below_id=row.below_id, lease_until=timezone.now() + LEASE)
    TabBackfill.objects.filter(id=row.id).update(lease_until=None)
    return done


def _sort(messages: Iterable[tuple[int, int, str, str]]) -> None:
    by_owner: dict[int, list[tuple[int, str, str]]] = {}
    for pk, owner_id, address, relpath in messages:
        by_owner.setdefault(owner_id, []).append((pk, address.strip().lower(), relpath))
    for owner_id, rows in by_owner.items():
        known, _chosen = tabs.known_and_chosen(owner_id, {address for _pk, address, _path in rows if address})
        found: dict[int, list[int]] = {}
        for pk, address, relpath in rows:
            value = tabs.stored(categories.classify(_headers(relpath), known_sender=address in known))
            if value is not None:
                found.setdefault(value, []).append(pk)
        with transaction.atomic():
            chosen = SenderCategory.objects.filter(owner_id=owner_id, address=Lower(OuterRef("from_email")))
            for value, ids in found.items():
                Message.objects.filter(id__in=ids, owner_id=owner_id).exclude(Exists(chosen)).update(category=value)
            if found:
                pagecache.touch([owner_id])
