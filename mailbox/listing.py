"""Keyset pagination for message lists: newest first, no OFFSET.

A cursor is the (date, id) of a row, the date being the one the list is
sorted by (a message's date, or the Inbox's and the Snoozed view's own, see
mailbox/virtual.py); "older" pages continue after the last row shown, "newer"
pages before the first. Each page is one indexed range scan however deep it
is, unlike OFFSET, which reads and throws away every row before the page.

A search matches rows all over a mailbox, in no index order: the database
finds every match and sorts them all for the newest 50. With a ``Window``,
the page is first looked for among the newest WINDOW_ROWS rows of each
folder only (a date bound found by short index walks); when that holds a
full page, it is exactly the page the whole search would give. Otherwise
the whole search runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet

from webpop.lib import pagecache

from .models import Message

PAGE_SIZE = 50
# Rows per folder a windowed search looks at first: with a word in 1 of 40 messages, 2,000 hold a page.
WINDOW_ROWS = 2000


class BadCursor(ValueError):
    pass


@dataclass
class Window:
    """Where a windowed search may look first: ``rows`` are the unsearched candidates (owner,
    account), ``folders`` every folder the search covers (each row of it is in one of them)."""

    rows: QuerySet
    folders: list[str]
    # With an owner, the bound of a first page is kept under their mailbox version (pagecache.remembered);
    # ``scope`` names what else narrows ``rows`` (an account). Any bound gives the right rows: a
    # kept one only decides how often the window holds a page.
    owner_id: int | None = None
    scope: str = ""


@dataclass
class Page:
    rows: list
    older: str | None  # cursor for the next (older) page, if any
    newer: str | None  # cursor for the previous (newer) page, if any


def encode(row, key: str = "date") -> str:
    return f"{getattr(row, key).timestamp():.6f}_{row.id}"


def decode(cursor: str) -> tuple[dt.datetime, int]:
    try:
        stamp, _, pk = cursor.partition("_")
        return dt.datetime.fromtimestamp(float(stamp), tz=dt.UTC), int(pk)
    except (ValueError, OverflowError, OSError):
        raise BadCursor(cursor) from None


def page(
    queryset: QuerySet,
    *,
    before: str | None = None,
    after: str | None = None,
    size: int = PAGE_SIZE,
    window: Window | None = None,
    key: str = "date",
    ascending: bool = False,
) -> Page:
    """Rows of ``queryset`` newest first; ``before``/``after`` are cursors from an earlier page.

    ``key``: the date the list is sorted by (a field, or an annotation of ``queryset``), then the
    id; ``ascending`` lists the soonest first. ``before`` continues down the list ("older"),
    ``after`` goes back up ("newer"), whichever way it is sorted.
    """
    order = (key, "id") if ascending else (f"-{key}", "-id")
    if after:
        # The rows just above the cursor, read upwards from it, then put back in the list's order.
        upwards = tuple(name.removeprefix("-") if name.startswith("-") else f"-{name}" for name in order)
        rows = list(queryset.filter(_beyond(decode(after), key, not ascending)).order_by(*upwards)[: size + 1])
        has_more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return Page(
            rows, older=encode(rows[-1], key) if rows else None, newer=encode(rows[0], key) if has_more_newer else None
        )
    below = _beyond(decode(before), key, ascending) if before else Q()
    rows = _in_window(queryset.filter(below), window, below, size + 1) if window and key == "date" else None
    if rows is None:
        rows = list(queryset.filter(below).order_by(*order)[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return Page(
        rows,
        older=encode(rows[-1], key) if has_more else None,
        newer=encode(rows[0], key) if before and rows else None,
    )


def _beyond(cursor: tuple[dt.datetime, int], key: str, ascending: bool) -> Q:
    """The rows after ``cursor`` in a list sorted by (key, id), ascending or descending."""
    date, pk = cursor
    if ascending:
        # key__gte narrows the index range; the OR alone makes the planner scan from the start.
        return Q(**{f"{key}__gte": date}) & (Q(**{f"{key}__gt": date}) | Q(**{key: date, "id__gt": pk}))
    return Q(**{f"{key}__lte": date}) & (Q(**{f"{key}__lt": date}) | Q(**{key: date, "id__lt": pk}))


def _in_window(queryset: QuerySet, window: Window, older_than: Q, n: int) -> list | None:
    """The first ``n`` rows of ``queryset`` if the newest WINDOW_ROWS of some folder hold them, else None.

    The bound is the newest of the folders' WINDOW_ROWS-th dates: every row newer than it is
    looked at, every row left out is older than all of them, so ``n`` rows found are the first
    ``n`` of the whole ``queryset``. The bound is one short index walk per folder
    (msg_owner_folder_date_idx), read first and passed to the page's query as a value, so the
    planner sees how narrow the window is (a subquery's value it can only guess). No folder
    that big: no bound, and the whole search runs at once instead of after an empty window.
    A first page's bound is kept while the owner's mail is unchanged (``Window.owner_id``).
    """
    if not window.folders or not connection.features.supports_slicing_ordering_in_compound:
        return None
    if window.owner_id is not None and not older_than:
        name = f"search-window:{window.scope}:{','.join(window.folders)}"
        bound = pagecache.remembered(window.owner_id, name, lambda: _bound(window, older_than))
    else:
        bound = _bound(window, older_than)
    if bound is None:
        return None
    windowed = queryset.filter(folder__in=window.folders, date__gte=bound).order_by("-date", "-id")
    rows = list(windowed[:n])
    return rows if len(rows) >= n else None


def _bound(window: Window, older_than: Q) -> dt.datetime | None:
    """The newest of the folders' WINDOW_ROWS-th dates (below ``older_than``); None if no folder is that big."""
    edges = [
        window.rows.filter(older_than, folder=folder)
        .order_by("-date", "-id")
        .values_list("date", flat=True)[WINDOW_ROWS - 1 : WINDOW_ROWS]
        for folder in window.folders
    ]
    return max(edges[0].union(*edges[1:], all=True), default=None)


def conversation_sizes(owner_id: int, folder: str, thread_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(messages, unread) in ``folder`` for each conversation of ``thread_ids``, in one query.

    Plain SQL: this runs for every conversation page, and building the ORM's GROUP BY with a
    50-value IN list cost more than the query itself.
    """
    table = connection.ops.quote_name(Message._meta.db_table)
    placeholders = ", ".join(["%s"] * len(thread_ids))
    sql = (
        f"SELECT thread_id, COUNT(*), SUM(CASE WHEN seen THEN 0 ELSE 1 END) FROM {table} "  # noqa: S608
        f"WHERE owner_id = %s AND folder = %s AND thread_id IN ({placeholders}) GROUP BY thread_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [owner_id, str(folder), *thread_ids])
        return {thread: (total, unread) for thread, total, unread in cursor.fetchall()}
