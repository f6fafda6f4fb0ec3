"""What a message list shows for each row, computed in Python once per page.

The inbox is the page people load most. Doing the per-row work here (one URL
pattern, one compiled highlighter, dates formatted by one formatter, the row
markup built with escaped values) instead of through template tags and filters
for every row keeps a 50-row page cheap; the template prints the rows at once.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable, Iterable
from typing import TypedDict

from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.dates import MONTHS_3
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext, pgettext


class Row(TypedDict):
    """One list row's values, ready to print (``render``)."""

    id: int
    url: str
    sender: str
    title: str  # the subject as plain text
    subject: str  # SafeString (escaped, search terms marked) when highlighting
    snippet: str
    iso_date: str
    date: str
    unread: bool
    flagged: bool
    has_attachments: bool
    conversation_size: int


def highlighter(terms: Iterable[str]) -> Callable[[str], SafeString]:
    """Escape a text and wrap every occurrence of a term in <mark> (case-insensitive).

    The pattern is compiled once per page, not once per cell.
    """
    words = sorted({escape(t) for t in terms or () if t and len(t) > 1}, key=len, reverse=True)
    if not words:
        return lambda text: SafeString(html.escape(text or ""))
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)

    def mark(text: str) -> SafeString:
        # html.escape is what Django's escape() calls, without its lazy-string wrapper.
        return SafeString(pattern.sub(r"<mark>\g<0></mark>", html.escape(text or "")))

    return mark


_SIMPLE_DATE_CODES = {
    "j": lambda d, months: str(d.day),
    "d": lambda d, months: f"{d.day:02d}",
    "n": lambda d, months: str(d.month),
    "m": lambda d, months: f"{d.month:02d}",
    "M": lambda d, months: months[d.month],
    "Y": lambda d, months: str(d.year),
    "y": lambda d, months: f"{d.year % 100:02d}",
    "G": lambda d, months: str(d.hour),
    "H": lambda d, months: f"{d.hour:02d}",
    "i": lambda d, months: f"{d.minute:02d}",
}


def _literal(part: str) -> Callable:
    text = part[1:] if part.startswith("\\") else part  # a backslash-escaped letter stands for itself
    return lambda value, months: text


def date_formatter(fmt: str) -> Callable[[dt.datetime], str]:
    """``dateformat.format(value, fmt)`` with the format parsed once, not once per row.

    Handles the codes a list date uses (day, month, year, hour, minute) and falls back to
    Django's formatter for any other code, so a translated format may use them all.
    """
    parts = re.findall(r"\\.|[a-zA-Z]|[^a-zA-Z\\]+", fmt)
    if any(len(p) == 1 and p.isalpha() and p not in _SIMPLE_DATE_CODES for p in parts):
        return lambda value: dateformat.format(value, fmt)
    months = [""] + [str(MONTHS_3[i]).title() for i in range(1, 13)]  # as Django's "M"
    pieces = [_SIMPLE_DATE_CODES[p] if len(p) == 1 and p.isalpha() else _literal(p) for p in parts]
    return lambda value: "".join(piece(value, months) for piece in pieces)


def present(
    messages: Iterable, *, highlight: list[str] | None = None, conversations: dict[int, tuple[int, int]] | None = None
) -> list[Row]:
    """Rows for ``mailbox/inbox.html`` from messages (Message instances or rows with the same fields).

    ``conversations``: for a list grouped into conversations, (messages, unread) of each listed
    conversation by ``thread_id`` (listing.conversation_sizes); a message missing there is alone.
    """
    # One reverse() for the page; every row's URL differs only in the id.
    prefix, _, suffix = reverse("mailbox:message", args=[0]).rpartition("0")
    no_subject = gettext("(no subject)")
    unknown_sender = gettext("(unknown sender)")
    # Translators: date and time of a message in lists (Django date format syntax).
    format_date = date_formatter(pgettext("message list date", "M j, Y H:i"))
    mark = highlighter(highlight) if highlight else None
    zone = timezone.get_current_timezone()
    rows = []
    for m in messages:
        subject = m.subject or no_subject
        local = m.date.astimezone(zone)
        size, unread_in_conversation = conversations.get(m.thread_id, (1, 0)) if conversations else (1, 0)
        rows.append(
            Row(
                id=m.id,
                url=f"{prefix}{m.id}{suffix}",
                sender=m.from_name or m.from_email or unknown_sender,
                title=subject,
                subject=mark(subject) if mark else subject,
                snippet=mark(m.snippet) if mark else m.snippet,
                iso_date=local.isoformat(),
                date=format_date(local),
                unread=not m.seen or bool(unread_in_conversation),
                flagged=m.flagged,
                has_attachments=m.has_attachments,
                conversation_size=size,
            )
        )
    return rows


# The markup of one list row. Rendered here rather than by a template loop: printing ~11 values
# per row through the template engine (lookup, localize, escape each) was the largest part of an
# inbox page's time. Every value is escaped (_esc) unless it is already safe markup.
_ROW = (
    '<li class="{css}" data-id="{id}">'
    '<input type="checkbox" name="ids" value="{id}" aria-label="{select} {title}">'
    '<a href="{url}"><span class="from">{star}{sender}{thread}</span>'
    '<span class="subject">{subject}{clip}</span>'
    '<span class="snippet">{snippet}</span>'
    '<time datetime="{iso_date}">{date}</time></a></li>\n'
)
_ESCAPED = ("title", "url", "sender", "subject", "snippet", "iso_date", "date")


def _esc(value) -> str:
    # The standard library's escape gives the same entities as Django's, without its lazy-string wrapper.
    return value if isinstance(value, SafeString) else html.escape(str(value))


def render(rows: list[Row]) -> SafeString:
    """The <li> elements of ``rows`` for the message list (``<ol id="message-list">``)."""
    select = _esc(gettext("Select:"))
    star = format_html('<span class="star" aria-label="{}">★</span> ', gettext("Starred"))
    clip = format_html(' <span class="clip" aria-label="{}">📎</span>', gettext("Has attachments"))
    parts = []
    for row in rows:
        size = row["conversation_size"]
        thread = ""
        if size > 1:
            label = ngettext("%(count)d message", "%(count)d messages", size) % {"count": size}
            thread = format_html(' <span class="thread-count" aria-label="{}">{}</span>', label, size)
        parts.append(
            _ROW.format(
                css=("unread" if row["unread"] else "") + (" starred" if row["flagged"] else ""),
                id=int(row["id"]),
                select=select,
                star=star if row["flagged"] else "",
                thread=thread,
                clip=clip if row["has_attachments"] else "",
                **{key: _esc(row[key]) for key in _ESCAPED},
            )
        )
    return mark_safe("".join(parts))  # noqa: S308 (every value escaped above)
