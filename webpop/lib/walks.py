"""Host-wide work done in bounded slices, each its own short transaction, with its progress in a row.

A job that must read everyone's data (storage totals, the store's garbage) never runs one
statement over all of it: ``run`` calls the job's ``step`` with the cursor of the current pass;
the step does one slice (a bounded statement or a few: a keyset range of ids, one shard of
files) and returns the next cursor, or None when the pass is complete. The step and the move of
the cursor commit together, so a worker killed mid-pass loses at most the slice it was doing,
and the next run goes on from the cursor. Between slices the job sleeps
``WEBPOP_WALK_PAUSE_MS``: the web's queries never wait behind a long run of slices.

Two runs of the same walk at once (beat fired twice, or a manual run) take turns slice by slice:
the cursor moves only from where the step started (a conditional update), so no slice counts twice.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webpop.models import WalkProgress

Step = Callable[[str], str | None]


class _Moved(Exception):
    """Another run moved the cursor while this slice was being done: its work is rolled back."""


def progress(name: str) -> WalkProgress:
    return WalkProgress.objects.get_or_create(name=name)[0]


def _slice(name: str, step: Step, atomic: bool) -> bool:
    """One slice, and the cursor moved after it; True when it completed the pass."""
    started = timezone.now()
    if atomic:
        with transaction.atomic():
            row = WalkProgress.objects.select_for_update().get(name=name)  # another run waits here
            return _move(row, step(row.cursor), started)
    # The step's work is not the database's (files): no transaction held open while it runs.
    row = WalkProgress.objects.get(name=name)
    return _move(row, step(row.cursor), started)


def _move(row: WalkProgress, following: str | None, started: dt.datetime) -> bool:
    rows = WalkProgress.objects.filter(name=row.name, cursor=row.cursor, slices=row.slices)
    pass_started = row.pass_started_at or started
    if following is None:
        now = timezone.now()
        moved = rows.update(
            cursor="",
            slices=0,
            pass_started_at=None,
            last_finished_at=now,
            last_seconds=(now - pass_started).total_seconds(),
            last_slices=row.slices + 1,
        )
    else:
        moved = rows.update(cursor=following, slices=row.slices + 1, pass_started_at=pass_started)
    if not moved:
        raise _Moved
    return following is None


def run(name: str, step: Step, *, atomic: bool = True, pause: float | None = None) -> WalkProgress:
    """Walk slices until the current pass is complete (a pass a killed run left half done goes on).

    ``atomic``: the step's database work and the cursor's move commit together (False: the step
    works on something else, e.g. files, and doing a slice twice is harmless).
    """
    progress(name)
    pause = settings.WEBPOP_WALK_PAUSE_MS / 1000 if pause is None else pause
    while True:
        try:
            if _slice(name, step, atomic):
                return progress(name)
        except _Moved:
            continue  # another run did this slice; go on from where it left the cursor
        if pause:
            time.sleep(pause)


def finished_at(name: str) -> dt.datetime | None:
    """When the walk last completed a pass (None: never); reads, never creates, its row."""
    return WalkProgress.objects.filter(name=name).values_list("last_finished_at", flat=True).first()
