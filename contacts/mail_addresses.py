"""Addresses from the user's own mail (From, To, Cc) for the compose form's suggestions.

The address book holds the people the user writes to; someone who so far only wrote to the user, or
shares a thread with them, is found here, after the contacts (contacts/views.py ``suggest``).
"""

from __future__ import annotations

from django.db.models import Q

from mailbox import mime
from mailbox.models import Folder, Message

SCAN_ROWS = 500  # newest matching messages looked at: recent correspondents first, bounded cost


def suggest(owner_id: int, prefix: str, limit: int = 10) -> list[dict[str, str]]:
    """Addresses or names starting with ``prefix`` (case-insensitive), most recent first, one per address."""
    prefix = " ".join((prefix or "").split()).lower()
    if len(prefix) < 2:
        return []
    rows = (
        Message.objects.filter(owner_id=owner_id)
        .exclude(folder=Folder.PURGED)
        .filter(
            Q(from_email__icontains=prefix) | Q(from_name__icontains=prefix) | Q(to__icontains=prefix)
            | Q(cc__icontains=prefix)
        )
        .order_by("-date", "-id")
        .values_list("from_name", "from_email", "to", "cc")[:SCAN_ROWS]
    )  # fmt: skip
    found: dict[str, dict[str, str]] = {}
    for from_name, from_email, to, cc in rows:
        candidates = [(from_name, from_email)]
        for text in (to, cc):
            for _group, entries in mime.parse_addresses(text):
                candidates.extend(pair for _written, pair in entries if pair)
        for name, address in candidates:
            key = (address or "").lower()
            if not key or "@" not in key or key in found or not _matches(prefix, name, key):
                continue
            found[key] = {"name": name, "address": address}
            if len(found) >= limit:
                return list(found.values())
    return list(found.values())


def _matches(prefix: str, name: str, address: str) -> bool:
    if address.startswith(prefix):
        return True
    name = (name or "").lower()
    return name.startswith(prefix) or any(word.startswith(prefix) for word in name.split())
