"""Queueing scans of new mail: called by mailbox/store.py inside the transaction that stores it.

Only rows are written here (one small row per message, only when a filter applies to the
account): ingest's cost stays the same whatever rspamd is doing, and the scan happens after
commit (spam/scanning.py), woken after the sync (mailbox/tasks.py) or found by beat's sweep.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils import timezone

from accounts.models import MailAccount
from mailbox.models import Message

from . import filtering
from .models import PendingScan


def scan_later(account: MailAccount, messages: Sequence[Message]) -> int:
    """Queue a spam scan of each of ``messages`` (just stored for ``account``), if a filter judges its mail."""
    if not messages or not filtering.mode_for(account).scans:
        return 0
    now = timezone.now()
    PendingScan.objects.bulk_create([PendingScan(message_id=m.pk, not_before=now, created_at=now) for m in messages])
    return len(messages)
