"""A short text summary of an iCalendar invitation, for the message body and search."""

from __future__ import annotations

import re

from .charsets import _clean, _one_line

_ICAL_LINE = re.compile(r"^([A-Za-z-]+)((?:;[^:\r\n]*)?):(.*)$", re.MULTILINE)


ICAL_EVENT_FIELDS = ("SUMMARY", "DTSTART", "DTEND", "LOCATION", "ORGANIZER", "DESCRIPTION", "STATUS")


def calendar_events(text: str, limit: int = 20) -> tuple[str, list[dict[str, tuple[str, str]]]]:
    """The METHOD and up to ``limit`` VEVENTs of an iCalendar text: {NAME: (params, raw value)} each.

    Values are as written (escapes kept): ``ical_text`` unescapes them. The first
    occurrence of a property in an event wins.
    """
    text = re.sub(r"\r?\n[ \t]", "", text[:1_000_000])
    method, events, event, nested = "", [], None, 0
    for name, params, value in _ICAL_LINE.findall(text):
        name, component = name.upper(), value.strip().upper()
        if name == "METHOD":
            method = component
        elif name == "BEGIN" and component == "VEVENT":
            event, nested = {}, 0
        elif event is None:
            continue
        elif name == "BEGIN":  # a VALARM inside the event: its SUMMARY is not the event's
            nested += 1
        elif name == "END" and component != "VEVENT":
            nested = max(nested - 1, 0)
        elif name == "END":
            if event:
                events.append(event)
            event = None
            if len(events) >= limit:
                break
        elif not nested and name in ICAL_EVENT_FIELDS and name not in event:
            event[name] = (params, value.strip())
    return method, events


def calendar_summary(text: str) -> str:
    """A few human lines for an iCalendar invitation: what, when, where, who."""
    method, events = calendar_events(text, limit=1)
    if not events:
        return ""
    event = events[0]
    verb = {"REQUEST": "Invitation", "CANCEL": "Cancelled", "REPLY": "Reply", "COUNTER": "Counter-proposal"}.get(
        method, "Event"
    )
    lines = [f"{verb}: {ical_text(event.get('SUMMARY', ('', '(no title)'))[1])}"]
    if "DTSTART" in event:
        when = _ical_time(*event["DTSTART"])
        if "DTEND" in event:
            when += f" – {_ical_time(*event['DTEND'])}"
        lines.append(f"When: {when}")
    if "LOCATION" in event:
        lines.append(f"Where: {ical_text(event['LOCATION'][1])}")
    if "ORGANIZER" in event:
        params, value = event["ORGANIZER"]
        cn = re.search(r';CN=("?)([^;:"]*)\1', params, re.IGNORECASE)
        address = re.sub(r"^mailto:", "", value, flags=re.IGNORECASE)
        lines.append(f"Organizer: {cn.group(2)} <{address}>" if cn else f"Organizer: {address}")
    return _clean("\n".join(_one_line(line, 300) for line in lines))


def ical_text(value: str) -> str:
    return re.sub(r"\\([,;\\nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _ical_time(params: str, value: str) -> str:
    match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})\d{0,2}(Z)?)?", value.strip())
    if not match:
        return value.strip()
    year, month, day, hour, minute, utc = match.groups()
    text = f"{year}-{month}-{day}"
    if hour:
        text += f" {hour}:{minute}"
        tzid = re.search(r";TZID=(\"?)([^;:\"]*)\1", params, re.IGNORECASE)
        text += " UTC" if utc else f" ({tzid.group(2)})" if tzid else ""
    return text
