"""Inbox tabs: which tab new mail goes in and each tab's unread count (mailbox/tabs_backfill.py: older mail).

The tab comes from the header fields (mailbox/categories.py, pure), unless the user chose one for
the sender (SenderCategory, set by actions.move_sender_to_tab); a sender the user knows (their
contacts, everyone they wrote to) is Primary. It is stored on Message.category at ingest, so
listing a tab and counting its unread mail are index range scans (msg_owner_tab_order_idx,
msg_owner_tab_unread_idx), whether or not the user has turned tabs on.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from . import categories, folders, mime
from .categories import Category
from .models import Folder, Message, SenderCategory

LABELS = {
    Category.PRIMARY: _("Primary"),
    Category.UPDATES: _("Updates"),
    Category.PROMOTIONS: _("Promotions"),
    Category.FORUMS: _("Forums"),
}


def stored(category: Category) -> int | None:
    """Message.category's value: NULL for Primary."""
    return None if category is Category.PRIMARY else int(category)


def condition(category: Category) -> Q:
    return Q(category__isnull=True) if category is Category.PRIMARY else Q(category=int(category))


def known_and_chosen(owner_id: int, addresses: set[str]) -> tuple[set[str], dict[str, Category]]:
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
    known, chosen = known_and_chosen(owner_id, {a for a in addresses if a})
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
