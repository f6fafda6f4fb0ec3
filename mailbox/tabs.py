"""Inbox tabs: which tab new mail goes in, each tab's unread count, and sorting mail stored before tabs.

The tab comes from the header fields (mailbox/categories.py, pure), unless the user chose one for
the sender (SenderCategory, set by actions.move_sender_to_tab); a sender the user knows (their
contacts, everyone they wrote to) is Primary. It is stored on Message.category at ingest, so
listing a tab and counting its unread mail are index range scans (msg_owner_tab_order_idx,
msg_owner_tab_unread_idx), whether or not the user has turned tabs on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import categories, folders, mime, pagecache
from .categories import Category
from .models import Folder, Message, SenderCategory, TabBackfill

LABELS = {
    Category.PRIMARY: _("Primary"),
    Category.UPDATES: _("Updates"),
    Category.PROMOTIONS: _("Promotions"),
    Category.FORUMS: _("Forums"),
}
# What the backfill reads of a raw file to find its header: a header longer than this is cut (bounded work).
HEAD_BYTES = 64 * 1024
BATCH = 500
LEASE = dt.timedelta(minutes=5)


def stored(category: Category) -> int | None:
    """Message.category's value: NULL for Primary."""
    return None if category is Category.PRIMARY else int(category)


def condition(category: Category) -> Q:
    return Q(category__isnull=True) if category is Category.PRIMARY else Q(category=int(category))


def _known_and_chosen(owner_id: int, addresses: set[str]) -> tuple[set[str], dict[str, Category]]:
    from contacts.models import ContactEmail  # contacts reads mail: imported late, as spam/ does

    if not addresses:
        return set(), {}
    known = set(
        ContactEmail.objects.filter(owner_id=owner_id, address_key__in=addresses).values_list("address_key", flat=True)
    )
    chosen = {
        address: Category(value)
        for address, value in SenderCategory.objects.filter(owner_id=owner_id, address__in=addresses).values_list(
            "address", "category"
        )
    }
    return known, chosen


def for_new(owner_id: int, parsed: list[mime.ParsedMessage]) -> list[int | None]:
    """Message.category for each of ``parsed``, new mail of ``owner_id`` (two queries for the batch)."""
    addresses = [p.from_email.strip().lower() for p in parsed]
    known, chosen = _known_and_chosen(owner_id, {a for a in addresses if a})
    found = []
    for address, p in zip(addresses, parsed, strict=True):
        choice = chosen.get(address)  # a Category; Primary is 0: compare with None
        found.append(
            stored(
                choice if choice is not None else categories.classify(p.category_headers, known_sender=address in known)
            )
        )
    return found


def unread_counts(owner_id: int) -> dict[str, int]:
    """Unread Inbox messages in each tab, by slug, in one query; capped like folders.unread_counts."""
    table = connection.ops.quote_name(Message._meta.db_table)
    one = (  # only the table name and fixed tests are formatted in; every value is a parameter
        "SELECT CAST(%s AS varchar(20)), (SELECT COUNT(*) FROM (SELECT 1 FROM {table} "
        "WHERE owner_id = %s AND folder = %s AND {test} AND NOT seen LIMIT %s) AS capped)"
    )
    parts, params = [], []
    for category in Category:
        test = "category IS NULL" if category is Category.PRIMARY else "category = %s"
        parts.append(one.format(table=table, test=test))
        params += [category.slug, owner_id, str(Folder.INBOX)]
        params += [] if category is Category.PRIMARY else [int(category)]
        params.append(folders.UNREAD_CAP + 1)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return {slug.strip(): count for slug, count in cursor.fetchall()}


# --- Mail stored before tabs ------------------------------------------------------------------


def _headers(relpath: str) -> dict[str, str]:
    from . import store  # store sorts new mail with this module

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
        known, _chosen = _known_and_chosen(owner_id, {address for _pk, address, _path in rows if address})
        found: dict[int, list[int]] = {}
        for pk, address, relpath in rows:
            value = stored(categories.classify(_headers(relpath), known_sender=address in known))
            if value is not None:
                found.setdefault(value, []).append(pk)
        with transaction.atomic():
            chosen = SenderCategory.objects.filter(owner_id=owner_id, address=Lower(OuterRef("from_email")))
            for value, ids in found.items():
                Message.objects.filter(id__in=ids, owner_id=owner_id).exclude(Exists(chosen)).update(category=value)
            if found:
                pagecache.touch([owner_id])
