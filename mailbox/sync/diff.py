"""The server's listing against what is stored: what is new, and what the server no longer has."""

from __future__ import annotations

import hashlib

from django.db.models import Q

from accounts.models import MailAccount

from ..models import FetchFailure, Message, ServerState, UidlAlias
from ..pop3 import Pop3Client, Pop3ServerError, Pop3TemporaryError


def server_listing(client: Pop3Client, notes: list[str]) -> dict[str, int]:
    """``{uidl: message number}``.

    A UIDL the server (wrongly) gives to several messages keeps its first
    message; the others get ``#2``, ``#3``… in listing order, so none is lost.
    """
    try:
        pairs = client.uidl()
    except Pop3ServerError as exc:
        if isinstance(exc, Pop3TemporaryError):
            raise
        pairs = _fingerprints(client, notes)
    listing: dict[str, int] = {}
    seen: dict[str, int] = {}
    for number, uidl in pairs:
        seen[uidl] = seen.get(uidl, 0) + 1
        key = uidl if seen[uidl] == 1 else f"{uidl}#{seen[uidl]}"
        listing[key] = number
    if len(seen) < len(pairs):
        notes.append("The server gives some messages the same UIDL.")
    return listing


def _fingerprints(client: Pop3Client, notes: list[str]) -> list[tuple[int, str]]:
    """No UIDL: identify each message by its size and a hash of its headers (TOP n 0)."""
    sizes = client.list()
    if client.capabilities.raw and not client.capabilities.top:  # without CAPA, just try TOP
        raise Pop3ServerError(f"{client.host} supports neither UIDL nor TOP, so messages cannot be told apart.")
    notes.append("The server has no UIDL: messages are recognised by size and headers.")
    digests: dict[int, hashlib._Hash] = {}

    class _Hasher:
        def __init__(self, digest):
            self.write = digest.update

    def open_out(number: int):
        digests[number] = hashlib.sha256(f"{sizes.get(number, 0)}:".encode())
        return _Hasher(digests[number])

    pairs = []
    for number, outcome in client.top_many(sorted(sizes), 0, open_out):
        if isinstance(outcome, Pop3ServerError):
            raise outcome
        pairs.append((number, "fp:" + digests[number].hexdigest()[:48]))
    return pairs


def new_messages(account: MailAccount, listing: dict[str, int]) -> list[tuple[str, int]]:
    """``(uidl, message number)`` of the listed messages this account has not stored (nor set aside)."""
    known = _known_uidls(account)
    return [(uidl, number) for uidl, number in listing.items() if uidl not in known]


def _known_uidls(account: MailAccount) -> set[str]:
    live = ~Q(server_state=ServerState.GONE)
    known = set(Message.objects.filter(live, account=account).values_list("uidl", flat=True))
    known.update(UidlAlias.objects.filter(live, account=account).values_list("uidl", flat=True))
    # Quarantined and too-large messages wait for the user's "retry".
    known.update(
        FetchFailure.objects.filter(account=account)
        .filter(Q(quarantined_at__isnull=False) | Q(reason=FetchFailure.Reason.TOO_LARGE))
        .values_list("uidl", flat=True)
    )
    return known


def reconcile_missing(account: MailAccount, listing: dict[str, int]) -> None:
    """Copies the server no longer lists are gone (deleted elsewhere, or expired)."""
    live = Message.objects.filter(account=account).exclude(server_state=ServerState.GONE)
    missing = [pk for pk, uidl in live.values_list("id", "uidl") if uidl not in listing]
    if missing:
        Message.objects.filter(id__in=missing).update(server_state=ServerState.GONE)
        Message.objects.filter(id__in=missing, folder="purged").delete()
