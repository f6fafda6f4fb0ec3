"""Every user's stored mail (messages, bytes), counted by a beat job in slices of message ids.

The dashboard's storage figures and /metrics read the ``StorageTotal`` rows this writes, so a
request never sums the host's mail. A pass walks the message table by its primary key,
``SLICE`` ids at a time (webpop/lib/walks.py): one statement finds where the slice ends (the
SLICE-th id above the cursor), one sums that id range by owner, and the owners' running sums
are added in the same short transaction as the cursor's move. The last slice makes the sums the
totals. Mail stored or deleted during a pass is counted as its slice found it; the next pass
(every ``WEBPOP_STORAGE_TOTALS_MINUTES``) catches up.
"""

from __future__ import annotations

from django.db.models import Count, F, Sum
from django.db.models.functions import Coalesce

from mailbox.models import Message
from webpop.lib import walks

from .models import StorageTotal

WALK = "storage_totals"
SLICE = 20_000


def _slice_end(low: int) -> tuple[int | None, bool]:
    """The last id of the slice above ``low`` and whether it is the pass's last slice."""
    ids = Message.objects.filter(id__gt=low).order_by("id").values_list("id", flat=True)
    end = list(ids[SLICE - 1 : SLICE])
    if end:
        return end[0], False
    return Message.objects.order_by("-id").values_list("id", flat=True).first(), True


def step(cursor: str) -> str | None:
    """Count one slice of messages into the pass's sums; None once the pass is complete."""
    low = int(cursor or 0)
    high, last = _slice_end(low)
    if high is not None and high > low:
        sums = (
            Message.objects.filter(id__gt=low, id__lte=high)
            .order_by()
            .values("owner_id")
            .annotate(n=Count("id"), size=Coalesce(Sum("size"), 0))
        )
        _add({row["owner_id"]: (row["n"], row["size"]) for row in sums})
    if not last:
        return str(high)
    StorageTotal.objects.update(messages=F("pass_messages"), bytes=F("pass_bytes"), pass_messages=0, pass_bytes=0)
    return None


def _add(sums: dict[int, tuple[int, int]]) -> None:
    StorageTotal.objects.bulk_create([StorageTotal(user_id=owner) for owner in sums], ignore_conflicts=True)
    for owner, (messages, size) in sums.items():
        StorageTotal.objects.filter(user_id=owner).update(
            pass_messages=F("pass_messages") + messages, pass_bytes=F("pass_bytes") + size
        )


def count(*, pause: float | None = None) -> dict:
    """Run (or go on with) a pass to its end; how long the last whole pass took."""
    done = walks.run(WALK, step, pause=pause)
    return {"seconds": done.last_seconds, "slices": done.last_slices}


def as_of():
    """When the totals were last complete (None: never yet)."""
    return walks.finished_at(WALK)
