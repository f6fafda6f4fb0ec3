"""What a message list shows for each row, computed in Python once per page.

The inbox is the page people load most. Doing the per-row work here (one URL
pattern, one compiled highlighter, dates formatted by one formatter, CSS classes
and labels) instead of through template tags and filters for every row keeps a
50-row page cheap; templates/mailbox/_rows.html only prints these values.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TypedDict

from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString
from django.utils.translation import get_language, gettext, ngettext, pgettext


class Row(TypedDict):
    """One list row's values, ready to print (templates/mailbox/_rows.html)."""

    id: int
    # Every value the row prints is a SafeString, escaped here once (and search terms marked): the template
    # then prints it as it is, not through the locale's number formatting and Django's escaping per variable.
    key: str  # the id, as printed
    url: str
    action_url: str  # the row's own buttons (star, archive...) post here
    css: str  # "unread", "starred", both or neither
    sender: str
    title: str  # the subject without marks
    subject: str
    snippet: str
    iso_date: str
    date: str  # short: the time today, day and month this year, the full date before
    full_date: str  # date and time, for the tooltip
    unread: bool
    flagged: bool
    has_attachments: bool
    probable_spam: bool  # the spam filter has doubts about it (spam/scanning.py)
    conversation_size: int
    conversation_label: str  # "3 messages" for a conversation, else empty


def highlighter(terms: Iterable[str]) -> Callable[[str], SafeString]:
    """Escape a text and wrap every occurrence of a term in <mark> (case-insensitive).

    Terms are matched in the text as written and each piece is escaped afterwards: matching the
    escaped text would find "amp" inside "&amp;" and cut entities apart. The pattern is compiled
    once per page, not once per cell.
    """
    words = sorted({t for t in terms or () if t and len(t) > 1}, key=len, reverse=True)
    if not words:
        return lambda text: SafeString(html.escape(text or ""))
    # One group: split() then alternates text between matches (even places) and matches (odd places).
    pattern = re.compile("(" + "|".join(re.escape(w) for w in words) + ")", re.IGNORECASE)

    def mark(text: str) -> SafeString:
        pieces = pattern.split(text or "")
        # html.escape is what Django's escape() calls, without its lazy-string wrapper.
        return SafeString(
            "".join(
                f"<mark>{html.escape(piece)}</mark>" if odd else html.escape(piece)
                for odd, piece in zip(itertools.cycle((False, True)), pieces, strict=False)
                if piece or odd
            )
        )

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
    Kept per process for each format and language (the month names are the language's).
    """
    return _date_formatter(fmt, get_language())


@lru_cache(maxsize=64)
def _date_formatter(fmt: str, _language: str | None) -> Callable[[dt.datetime], str]:
    # The language is only part of the key: the month names below are translated into the active one.
    parts = re.findall(r"\\.|[a-zA-Z]|[^a-zA-Z\\]+", fmt)
    if any(len(p) == 1 and p.isalpha() and p not in _SIMPLE_DATE_CODES for p in parts):
        return lambda value: dateformat.format(value, fmt)
    months = [""] + [str(MONTHS_3[i]).title() for i in range(1, 13)]  # as Django's "M"
    pieces = [_SIMPLE_DATE_CODES[p] if len(p) == 1 and p.isalpha() else _literal(p) for p in parts]
    return lambda value: "".join(piece(value, months) for piece in pieces)


def present(
    messages: Iterable,
    *,
    highlight: list[str] | None = None,
    conversations: dict[int, tuple[int, int]] | None = None,
    when: str = "date",
    until: bool = False,
    now: dt.datetime | None = None,
) -> list[Row]:
    """Rows for ``mailbox/_rows.html`` from messages (Message instances or rows with the same fields).

    ``conversations``: for a list grouped into conversations, (messages, unread) of each listed
    conversation by ``thread_id`` (listing.conversation_sizes); a message missing there is alone.
    ``when``: the date shown, the one the list is sorted by (mailbox/virtual.py); ``until``: it is
    the time snoozed mail comes back. ``now``: what "today" and "this year" are measured from.
    """
    # One reverse() for the page; every row's URL differs only in the id.
    # Escaped once here: a row's URL is these around its id (digits).
    prefix, _, suffix = html.escape(reverse("mailbox:message", args=[0])).rpartition("0")
    act_prefix, _, act_suffix = html.escape(reverse("mailbox:row_action", args=[0])).rpartition("0")
    no_subject = gettext("(no subject)")
    unknown_sender = gettext("(unknown sender)")
    zone = timezone.get_current_timezone()
    # Translators: date and time of a message in lists, in full (Django date format syntax).
    full_date = date_formatter(pgettext("message list date", "M j, Y H:i"))
    short_date = relative_formatter((now or timezone.now()).astimezone(zone))
    if until:  # when snoozed mail comes back: the hour matters as much as the day
        # Translators: in the list of snoozed mail, when a message comes back.
        back_at = gettext("until %(date)s")
        short_date = lambda value: back_at % {"date": full_date(value)}  # noqa: E731
    # Every text escaped here, once, as the highlighter does: the template then prints it without
    # escaping it again per variable (a third of the rows' rendering time).
    mark = highlighter(highlight) if highlight else _escaped
    sizes: dict[int, str] = {}
    rows = []
    for m in messages:
        subject = m.subject or no_subject
        local = getattr(m, when).astimezone(zone)
        size, unread_in_conversation = conversations.get(m.thread_id, (1, 0)) if conversations else (1, 0)
        if size > 1 and size not in sizes:
            sizes[size] = ngettext("%(count)d message", "%(count)d messages", size) % {"count": size}
        unread = not m.seen or bool(unread_in_conversation)
        rows.append(
            Row(
                id=m.id,
                key=SafeString(m.id),  # digits
                url=SafeString(f"{prefix}{m.id}{suffix}"),
                action_url=SafeString(f"{act_prefix}{m.id}{act_suffix}"),
                css=_CSS[unread, m.flagged],
                sender=_escaped(m.from_name or m.from_email or unknown_sender),
                title=_escaped(subject),
                subject=mark(subject),
                snippet=mark(m.snippet),
                iso_date=SafeString(local.isoformat()),  # digits, "-", ":", "T", "+"
                date=_escaped(short_date(local)),
                full_date=_escaped(full_date(local)),
                unread=unread,
                flagged=m.flagged,
                has_attachments=m.has_attachments,
                probable_spam=getattr(m, "spam_verdict", "") == "probable",
                conversation_size=size,
                conversation_label=sizes.get(size, ""),
            )
        )
    return rows


def _escaped(text: str) -> SafeString:
    # html.escape is what Django's escape() calls, without its lazy-string wrapper.
    return SafeString(html.escape(text or ""))


_CSS = {
    key: SafeString(value)
    for key, value in {
        (False, False): "",
        (True, False): "unread",
        (False, True): "starred",
        (True, True): "unread starred",
    }.items()
}


def relative_formatter(now: dt.datetime) -> Callable[[dt.datetime], str]:
    """A list's short date, by how far from ``now`` (both local): the time today, the day this year, else the date."""
    # Translators: a message's time in lists when it is from today (Django date format syntax).
    today = date_formatter(pgettext("message list time today", "H:i"))
    # Translators: a message's day in lists when it is from this year (Django date format syntax).
    this_year = date_formatter(pgettext("message list date this year", "M j"))
    # Translators: a message's date in lists when it is from another year (Django date format syntax).
    other_year = date_formatter(pgettext("message list date other year", "M j, Y"))
    day, year = now.date(), now.year

    def short(value: dt.datetime) -> str:
        if value.date() == day:
            return today(value)
        return this_year(value) if value.year == year else other_year(value)

    return short


def render(rows: list[Row], **context) -> SafeString:
    """The <li> elements of ``rows`` for the message list, as the list page prints them (for tests and reuse)."""
    return render_to_string("mailbox/_rows.html", {"rows": rows, **labels(), **context})


def labels() -> dict[str, str]:
    """What every row says alike, looked up once per page rather than once per row."""
    labels = {
        "row_select": gettext("Select:"),
        "row_clip": gettext("Has attachments"),
        "row_probable_spam": gettext("Probably spam"),
        "row_star": pgettext("row action", "Star"),
        "row_unstar": gettext("Remove star"),
        "row_archive": pgettext("row action", "Archive"),
        "row_delete": gettext("Delete"),
        "row_restore": gettext("Restore"),
        "row_read": gettext("Mark read"),
        "row_unread": gettext("Mark unread"),
        "row_actions": gettext("Actions"),
        "sprite": static("icons/sprite.svg"),
    }
    return {key: _escaped(value) for key, value in labels.items()}
