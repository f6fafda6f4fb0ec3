"""What the Celery broker is trusted with: waking workers up soon. It never holds work.

Every background job lives in database rows that a beat sweep finds again (a due account, a queued
message and its next try, a missing search document), so a lost message delays work but never loses it.

A task published with a countdown (or an eta) is taken by a worker at once and held until it is due.
On Redis, a message not acknowledged within the visibility timeout goes back to the queue, so a longer
countdown makes a second worker run the task again; on the folder queue the message is deleted when a
worker takes it, so the countdown lives only in that worker's memory. Countdowns are therefore held to
half the visibility timeout (the other half is for waiting in line and running); a longer wait belongs
on a row.
"""

from __future__ import annotations

import datetime as dt

# kombu's Redis transport's own default; the folder queue has none and gets the same limit.
DEFAULT_VISIBILITY_TIMEOUT = 3600


class CountdownTooLong(ValueError):
    """A task was to wait in the broker longer than the broker keeps it safely."""


def visibility_timeout(transport_options: dict | None) -> int:
    return int((transport_options or {}).get("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT))


def max_countdown(transport_options: dict | None) -> int:
    """The longest countdown a task may be published with, in seconds."""
    return visibility_timeout(transport_options) // 2


def check_delay(options: dict, transport_options: dict | None, now: dt.datetime | None = None) -> None:
    """Raise CountdownTooLong when ``apply_async`` options ask the broker to hold a task too long."""
    countdown = options.get("countdown")
    eta = options.get("eta")
    if isinstance(eta, str):
        eta = dt.datetime.fromisoformat(eta)
    if isinstance(eta, dt.datetime):
        now = now or dt.datetime.now(dt.UTC)
        if eta.tzinfo is None:
            eta = eta.replace(tzinfo=dt.UTC)
        countdown = max(countdown or 0, (eta - now).total_seconds())
    limit = max_countdown(transport_options)
    if countdown is not None and countdown > limit:
        raise CountdownTooLong(
            f"a countdown of {countdown:.0f} s exceeds {limit} s (half the broker's visibility timeout): "
            "keep the time on a database row for a beat sweep instead"
        )
