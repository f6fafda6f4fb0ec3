"""When a snoozed conversation comes back: the menu's choices and the times people pick.

Pure functions of "now" and a time zone (the user's: accounts' Profile.time_zone, which the
middleware activates), so they are tested with fixed clocks. Every choice is a moment, not a
rule: the menu offers "Tomorrow, 08:00" as that instant, and the form sends it, so what is
snoozed is what was shown, even from a page rendered a while ago.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

MORNING = dt.time(8, 0)
LATER_HOURS = 3  # "Later today": at least this much later, on the hour
# Beyond this, a date is a typo (year 20260) rather than a plan.
LONGEST = dt.timedelta(days=5 * 366)
SATURDAY, MONDAY = 5, 0


class SnoozeTimeError(ValueError):
    """A time that cannot be snoozed until; ``code`` says why (``unreadable``, ``past``, ``too_far``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Choice:
    slug: str  # later_today, tomorrow, weekend, next_week
    when: dt.datetime  # aware, in the zone the choices were made for


def _at(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, time, tzinfo=zone)


def choices(now: dt.datetime, zone: ZoneInfo) -> list[Choice]:
    """The menu's choices at ``now`` (aware) for someone in ``zone``, soonest first.

    Later today: three hours on, rounded up to the hour, while that is still today. Tomorrow:
    08:00. This weekend: Saturday 08:00, offered Monday to Friday. Next week: Monday 08:00, unless
    that is tomorrow.
    """
    local = now.astimezone(zone)
    today = local.date()
    found: list[Choice] = []
    later = (local + dt.timedelta(hours=LATER_HOURS)).replace(minute=0, second=0, microsecond=0)
    if later < local + dt.timedelta(hours=LATER_HOURS):
        later += dt.timedelta(hours=1)
    if later.date() == today:
        found.append(Choice("later_today", _at(today, later.time(), zone)))
    found.append(Choice("tomorrow", _at(today + dt.timedelta(days=1), MORNING, zone)))
    if local.weekday() < SATURDAY:
        found.append(Choice("weekend", _at(today + dt.timedelta(days=SATURDAY - local.weekday()), MORNING, zone)))
    next_week = _at(today + dt.timedelta(days=7 - local.weekday()), MORNING, zone)
    if next_week != found[-1].when:  # on Sundays it is tomorrow's
        found.append(Choice("next_week", next_week))
    return found


def parse(value: str, now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The moment a form sent: ISO 8601 with an offset (a menu choice), or a local date and time
    ("2026-12-24T18:00", the date picker's) read in ``zone``. Returned in UTC.

    Refused: anything unreadable, a moment that has passed, or one more than five years on.
    """
    try:
        moment = dt.datetime.fromisoformat((value or "").strip())
    except ValueError:
        raise SnoozeTimeError("unreadable") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        moment = moment.astimezone(dt.UTC)
    except OverflowError:
        raise SnoozeTimeError("too_far") from None
    if moment <= now:
        raise SnoozeTimeError("past")
    if moment - now > LONGEST:
        raise SnoozeTimeError("too_far")
    return moment
