"""Free space where webpop writes: the mail store (or its spool, for a remote store) and the temp folder.

A full disk stops ingest (nothing is lost, but nothing new arrives): the dashboard and /metrics
warn while there is still room, below ``WEBPOP_DISK_ALERT_FREE_PERCENT`` of the file system or
``WEBPOP_DISK_ALERT_FREE_MB``, whichever is more.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from mailbox import store


@dataclass(frozen=True)
class Volume:
    names: tuple[str, ...]  # "store", "temp": what is written there
    path: str
    free_bytes: int
    total_bytes: int
    alert_below: int  # bytes

    @property
    def low(self) -> bool:
        return self.free_bytes < self.alert_below

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 0.0


def _places() -> list[tuple[str, Path]]:
    # A remote store spools each message on the local disk before sending it: that folder counts then.
    return [("store", store.root()), ("temp", Path(tempfile.gettempdir()))]


def volumes() -> list[Volume]:
    """One entry per file system (the store and temp folder often share one); unreadable places are left out."""
    found: dict[int, Volume] = {}
    for name, path in _places():
        try:
            path.mkdir(parents=True, exist_ok=True)
            st = os.statvfs(path)
            device = os.stat(path).st_dev
        except OSError:
            continue
        if device in found:
            earlier = found[device]
            found[device] = Volume((*earlier.names, name), earlier.path, earlier.free_bytes, earlier.total_bytes,
                                   earlier.alert_below)  # fmt: skip
            continue
        total = st.f_blocks * st.f_frsize
        alert_below = max(
            total * settings.WEBPOP_DISK_ALERT_FREE_PERCENT // 100, settings.WEBPOP_DISK_ALERT_FREE_MB * 1024 * 1024
        )
        found[device] = Volume((name,), str(path), st.f_bavail * st.f_frsize, total, alert_below)
    return list(found.values())
