"""Keyset pagination for message lists: newest first, no OFFSET.

A cursor is the (date, id) of a row; "older" pages continue after the last
row shown, "newer" pages before the first. Each page is one indexed range
scan however deep it is, unlike OFFSET, which reads and throws away every
row before the page.

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

from .models import Message

PAGE_SIZE = 50
# Rows per folder a windowed search looks at first: with a word in 1 of 40 messages, 2,000 hold a page.
WINDOW_ROWS = 2000


_FOLDER_SLOT = "\0folder"  # stands for each folder in a compiled query; no folder is named so


class BadCursor(ValueError):
    pass


@dataclass
class Window:
    """Where a windowed search may look first: ``rows`` are the unsearched candidates (owner,
    account), ``folders`` every folder the search covers (each row of it is in one of them)."""

    rows: QuerySet
    folders: list[str]


@dataclass
class Page:
    rows: list
    older: str | None  # cursor for the next (older) page, if any
    newer: str | None  # cursor for the previous (newer) page, if any


def encode(row) -> str:
    return f"{row.date.timestamp():.6f}_{row.id}"


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
) -> Page:
    """Rows of ``queryset`` newest first; ``before``/``after`` are cursors from an earlier page."""
    if after:
        date, pk = decode(after)
        # date__gte narrows the index range; the OR alone makes the planner scan from the start.
        newer = (
            queryset.filter(date__gte=date).filter(Q(date__gt=date) | Q(date=date, id__gt=pk)).order_by("date", "id")
        )
        rows = list(newer[: size + 1])
        has_more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return Page(rows, older=encode(rows[-1]) if rows else None, newer=encode(rows[0]) if has_more_newer else None)
    older_than = _older_than(decode(before)) if before else Q()
    rows = _in_window(queryset.filter(older_than), window, older_than, size + 1) if window else None
    if rows is None:
        rows = list(queryset.filter(older_than).order_by("-date", "-id")[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return Page(
        rows,
        older=encode(rows[-1]) if has_more else None,
        newer=encode(rows[0]) if before and rows else None,
    )


def _older_than(cursor: tuple[dt.datetime, int]) -> Q:
    date, pk = cursor
    # date__lte narrows the index range; the OR alone makes the planner scan from the start.
    return Q(date__lte=date) & (Q(date__lt=date) | Q(date=date, id__lt=pk))


def _in_window(queryset: QuerySet, window: Window, older_than: Q, n: int) -> list | None:
    """The first ``n`` rows of ``queryset`` if the newest WINDOW_ROWS of some folder hold them, else None.

    The bound is the newest of the folders' WINDOW_ROWS-th dates: every row newer than it is
    looked at, every row left out is older than all of them, so ``n`` rows found are the first
    ``n`` of the whole ``queryset``. The bound is one short index walk per folder
    (msg_owner_folder_date_idx), read first and passed to the page's query as a value, so the
    planner sees how narrow the window is (a subquery's value it can only guess). No folder
    that big: no bound, and the whole search runs at once instead of after an empty window.
    """
    if not window.folders or not connection.features.supports_slicing_ordering_in_compound:
        return None
    # One folder's edge, compiled once and repeated per folder with that folder as its parameter:
    # compiling a queryset per folder and their union cost more than running the query.
    edge = (
        window.rows.filter(older_than, folder=_FOLDER_SLOT)
        .order_by("-date", "-id")
        .values_list("date", flat=True)[WINDOW_ROWS - 1 : WINDOW_ROWS]
    )
    edge_sql, edge_params = edge.query.sql_with_params()
    slots = [i for i, value in enumerate(edge_params) if value == _FOLDER_SLOT]
    if len(slots) != 1:
        return None
    params: list = []
    for folder in window.folders:
        params += [*edge_params[: slots[0]], str(folder), *edge_params[slots[0] + 1 :]]
    edges_sql = " UNION ALL ".join([f"({edge_sql})"] * len(window.folders))
    column = connection.ops.quote_name("date")
    with connection.cursor() as cursor:
        # Only SQL compiled by Django is formatted in; its values stay parameters.
        cursor.execute(f"SELECT MAX(edges.{column}) FROM ({edges_sql}) AS edges", params)  # noqa: S608
        (bound,) = cursor.fetchone()
    if bound is None:
        return None
    windowed = queryset.filter(folder__in=window.folders, date__gte=bound).order_by("-date", "-id")
    rows = list(windowed[:n])
    return rows if len(rows) >= n else None


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
