"""Crash points for the crash-safety tests (tests/test_sync_crash.py)."""

from __future__ import annotations

import os
import signal

# "point:n" kills this process with SIGKILL the n-th time the sync reaches
# that point. Empty (always, outside the crash tests) it costs one comparison.
_CRASH_AT = os.environ.get("WEBPOP_TEST_CRASH_AT", "")
_crash_hits: dict[str, int] = {}


def point(name: str) -> None:
    if not _CRASH_AT:
        return
    where, _, nth = _CRASH_AT.partition(":")
    if where == name:
        _crash_hits[name] = _crash_hits.get(name, 0) + 1
        if _crash_hits[name] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
