"""Keyset pagination for message lists: newest first, no OFFSET.

A cursor is the (date, id) of a row; "older" pages continue after the last
row shown, "newer" pages before the first. Each page is one indexed range
scan however deep it is, unlike OFFSET, which reads and throws away every
row before the page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet

from .models import Message

PAGE_SIZE = 50


class BadCursor(ValueError):
    pass


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


def page(queryset: QuerySet, *, before: str | None = None, after: str | None = None, size: int = PAGE_SIZE) -> Page:
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
    ordered = queryset.order_by("-date", "-id")
    if before:
        date, pk = decode(before)
        ordered = ordered.filter(date__lte=date).filter(Q(date__lt=date) | Q(date=date, id__lt=pk))
    rows = list(ordered[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return Page(
        rows,
        older=encode(rows[-1]) if has_more else None,
        newer=encode(rows[0]) if before and rows else None,
    )


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
