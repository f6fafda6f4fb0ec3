"""Calendar attachments (.ics) as events a card can show: title, when, where, who, and which version.

Parsed with the ``icalendar`` library, which resolves a TZID through the time
zone database, a Windows zone name or the file's own VTIMEZONE. Times become
aware datetimes where the file says which zone they are in, so templates show
them in the reader's time zone; a floating time (no zone) stays as written, the
same wall-clock time everywhere. Untrusted input is bounded: the text is cut,
at most ``MAX_EVENTS`` events and ``MAX_ATTENDEES`` attendees are kept, and a
file the library cannot read is no calendar rather than an error.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

import icalendar

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 256 * 1024
MAX_EVENTS = 20
MAX_ATTENDEES = 50
MAX_DESCRIPTION_CHARS = 2_000
# What senders put in front of the title (in the subject, and some in SUMMARY too): the card says it once.
_TITLE_PREFIX = re.compile(
    r"^\s*((updated\s+)?invitation|aktualisierte\s+einladung|einladung|invitation\s+mise\s+à\s+jour)\s*:\s*",
    re.IGNORECASE,
)
PARTSTATS = ("ACCEPTED", "TENTATIVE", "DECLINED")


@dataclass(frozen=True)
class When:
    """A start or end: an aware datetime, a floating (naive) one, or a date (all day)."""

    value: dt.datetime | dt.date
    zone_label: str = ""

    @property
    def all_day(self) -> bool:
        return not isinstance(self.value, dt.datetime)

    @property
    def aware(self) -> bool:
        return isinstance(self.value, dt.datetime) and self.value.tzinfo is not None


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    partstat: str = ""  # ACCEPTED, TENTATIVE, DECLINED, NEEDS-ACTION, … as the file says

    def __str__(self) -> str:
        if self.name and self.email:
            return f"{self.name} <{self.email}>"
        return self.name or self.email


@dataclass(frozen=True)
class Event:
    title: str
    start: When | None
    end: When | None
    location: str
    organizer_name: str
    organizer_email: str
    description: str
    cancelled: bool
    uid: str = ""
    sequence: int = 0
    recurrence_id: str = ""  # as written: one occurrence of a recurring event
    recurring: bool = False
    attendees: list[Person] = field(default_factory=list)
    more_attendees: int = 0  # beyond MAX_ATTENDEES

    @property
    def key(self) -> tuple[str, str]:
        return self.uid, self.recurrence_id


@dataclass(frozen=True)
class Calendar:
    method: str  # REQUEST (an invitation), CANCEL, REPLY, PUBLISH, … or ""
    events: list[Event]


def parse(text: str) -> icalendar.Calendar | None:
    """The first VCALENDAR of ``text`` (cut to MAX_TEXT_CHARS), or None when there is none or it is unreadable."""
    try:
        calendars = icalendar.Calendar.from_ical(text[:MAX_TEXT_CHARS], multiple=True)
    except Exception:  # the library raises many kinds on hostile input: no card then
        log.info("unreadable calendar")
        return None
    for calendar in calendars:
        if calendar.name == "VCALENDAR":
            return calendar
    return None


def read(text: str) -> Calendar:
    calendar = parse(text)
    if calendar is None:
        return Calendar(method="", events=[])
    method = str(calendar.get("METHOD", "")).strip().upper()[:20]
    events = []
    for component in calendar.walk("VEVENT")[:MAX_EVENTS]:
        event = _event(component)
        if event is not None:
            events.append(event)
    return Calendar(method=method, events=events)


def clean_title(value: str) -> str:
    while (stripped := _TITLE_PREFIX.sub("", value, count=1)) != value:
        value = stripped
    return value.strip()


def address_of(value) -> str:
    return re.sub(r"^mailto:", "", str(value or "").strip(), flags=re.IGNORECASE)[:320]


def _text(component, name: str, limit: int = 300) -> str:
    value = component.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    value = str(value or "").strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _param(prop, name: str) -> str:
    params = getattr(prop, "params", None) or {}
    value = params.get(name, "")
    return str(value).strip()[:200]


def _event(component) -> Event | None:
    try:
        start = _when(component, "DTSTART")
        end = _when(component, "DTEND")
    except Exception:  # a broken date or time zone: the rest of the event is still worth showing
        start = end = None
    if start and end and start.all_day and end.all_day and end.value > start.value:
        end = When(end.value - dt.timedelta(days=1))  # DTEND of an all-day event is the day after
        if end.value == start.value:
            end = None
    organizer = component.get("ORGANIZER")
    attendees = component.get("ATTENDEE") or []
    if not isinstance(attendees, list):
        attendees = [attendees]
    people = [
        Person(_param(a, "CN"), address_of(a), _param(a, "PARTSTAT").upper()[:20]) for a in attendees[:MAX_ATTENDEES]
    ]
    try:
        sequence = max(0, min(int(str(component.get("SEQUENCE", 0)).strip() or 0), 2**31 - 1))
    except ValueError:
        sequence = 0
    recurrence = component.get("RECURRENCE-ID")
    return Event(
        title=clean_title(_text(component, "SUMMARY")),
        start=start,
        end=end,
        location=_text(component, "LOCATION"),
        organizer_name=_param(organizer, "CN") if organizer is not None else "",
        organizer_email=address_of(organizer),
        description=_text(component, "DESCRIPTION", MAX_DESCRIPTION_CHARS),
        cancelled=_text(component, "STATUS").upper() == "CANCELLED",
        uid=_text(component, "UID", 255),
        sequence=sequence,
        recurrence_id=recurrence.to_ical().decode("ascii", "replace")[:64] if recurrence is not None else "",
        recurring="RRULE" in component or "RDATE" in component,
        attendees=people,
        more_attendees=max(0, len(attendees) - MAX_ATTENDEES),
    )


def _when(component, name: str) -> When | None:
    if name not in component:
        return None
    value = component.decoded(name)
    if isinstance(value, dt.datetime):
        return When(value)
    if isinstance(value, dt.date):
        return When(value)
    return None
