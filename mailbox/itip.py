"""iTIP replies (RFC 5546 3.2.3): an attendee's answer to an invitation, as iCalendar text.

The REPLY names the event exactly as the organiser's invitation did (UID, SEQUENCE,
RECURRENCE-ID with its time zone), carries only the replying attendee with the
chosen PARTSTAT, the ORGANIZER and a DTSTAMP. Built with ``icalendar`` from the
received component, so parameters and values are copied, never re-typed.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import icalendar

from . import ical

PRODID = "-//webpop//calendar replies//EN"


class NoSuchEvent(LookupError):
    pass


def find_event(calendar: icalendar.Calendar, uid: str, recurrence_id: str):
    """The VEVENT of ``calendar`` with this UID and RECURRENCE-ID ("" for the event itself)."""
    for component in calendar.walk("VEVENT")[: ical.MAX_EVENTS]:
        event = ical._event(component)
        if event is not None and event.key == (uid, recurrence_id):
            return component
    raise NoSuchEvent(uid)


def build_reply(
    calendar: icalendar.Calendar,
    *,
    uid: str,
    recurrence_id: str,
    attendee_email: str,
    attendee_name: str,
    partstat: str,
    now: dt.datetime,
) -> bytes:
    """The METHOD:REPLY calendar answering the event (``uid``, ``recurrence_id``) of ``calendar``."""
    if partstat not in ical.PARTSTATS:
        raise ValueError(partstat)
    original = find_event(calendar, uid, recurrence_id)
    reply = icalendar.Calendar()
    reply.add("PRODID", PRODID)
    reply.add("VERSION", "2.0")
    reply.add("METHOD", "REPLY")
    event = icalendar.Event()
    event.add("UID", original["UID"])
    if "RECURRENCE-ID" in original:
        event["RECURRENCE-ID"] = original["RECURRENCE-ID"]
    event.add("SEQUENCE", ical._event(original).sequence)
    event.add("DTSTAMP", now.astimezone(dt.UTC))
    event["ORGANIZER"] = original["ORGANIZER"]
    attendee = icalendar.vCalAddress(f"mailto:{attendee_email}")
    if attendee_name:
        attendee.params["CN"] = attendee_name
    attendee.params["PARTSTAT"] = partstat
    event.add("ATTENDEE", attendee)
    if "SUMMARY" in original:
        event["SUMMARY"] = original["SUMMARY"]
    if "DTSTART" in original:
        event["DTSTART"] = original["DTSTART"]
    if "DTEND" in original:
        event["DTEND"] = original["DTEND"]
    # A TZID used by a copied property needs its VTIMEZONE in the reply (RFC 5546 3.2.3).
    used = {
        str(original[name].params.get("TZID"))
        for name in ("RECURRENCE-ID", "DTSTART", "DTEND")
        if name in original and original[name].params.get("TZID")
    }
    for timezone in calendar.walk("VTIMEZONE"):
        if str(timezone.get("TZID", "")) in used:
            reply.add_component(timezone)
    reply.add_component(event)
    # A zone database TZID the invitation did not describe; an unknown one the organiser's calendar knows.
    with contextlib.suppress(Exception):
        reply.add_missing_timezones()
    return reply.to_ical()
