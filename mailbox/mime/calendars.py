"""A short text summary of an iCalendar invitation: for the message body, the snippet and search.

Read with ``icalendar`` through mailbox/ical.py, the reader the invitation card
uses, so the summary and the card agree on the title, the times and an all-day
event's last day. A text the library cannot read has no summary.
"""

from __future__ import annotations

import datetime as dt
import re

from .. import ical
from .charsets import _clean, _one_line

# The library costs microseconds a character: it reads the first event only (the summary shows no
# other), from a bounded head of the text.
MAX_INPUT_CHARS = 64 * 1024
_FIRST_EVENT_END = re.compile(r"^END:VEVENT[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)

_VERBS = {"REQUEST": "Invitation", "CANCEL": "Cancelled", "REPLY": "Reply", "COUNTER": "Counter-proposal"}


def calendar_summary(text: str) -> str:
    """A few human lines for the first event of an iCalendar text: what, when, where, who."""
    head = text[:MAX_INPUT_CHARS]
    end = _FIRST_EVENT_END.search(head)
    if end:
        head = head[: end.end()] + "\r\nEND:VCALENDAR\r\n"
    calendar = ical.read(head)
    if not calendar.events:
        return ""
    event = calendar.events[0]
    lines = [f"{_VERBS.get(calendar.method, 'Event')}: {event.title or '(no title)'}"]
    if event.start is not None:
        when = _time(event.start.value)
        if event.end is not None:
            when += f" – {_time(event.end.value)}"
        lines.append(f"When: {when}")
    if event.location:
        lines.append(f"Where: {event.location}")
    if event.organizer_email or event.organizer_name:
        name, address = event.organizer_name, event.organizer_email
        lines.append(f"Organizer: {name} <{address}>" if name and address else f"Organizer: {name or address}")
    return _clean("\n".join(_one_line(line, 300) for line in lines))


def _time(value: dt.date) -> str:
    """As written in the file: the date, the wall-clock time and its zone (no zone: floating time)."""
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d}"
    if value.tzinfo is None:
        return text
    zone = getattr(value.tzinfo, "key", None) or value.tzname() or ""
    return f"{text} UTC" if zone in ("UTC", "Etc/UTC") else f"{text} ({zone})" if zone else text
