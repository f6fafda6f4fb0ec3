"""The server's listing against what is stored: what is new, and what the server no longer has."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

from django.db.models import Q
from django.utils import timezone

from accounts.models import MailAccount
from webpop.lib import pagecache

from ..models import DamagedFile, FetchFailure, Message, ServerState, UidlAlias
from ..pop3 import Pop3Client, Pop3ServerError, Pop3TemporaryError
from . import schedule


class Listing(dict[str, int]):
    """``{uidl: message number}`` (``schedule.listing_keys``); ``by_fingerprint`` when the server has no UIDL."""

    by_fingerprint: bool = False


def server_listing(client: Pop3Client, notes: list[str]) -> Listing:
    """The server's listing; a server without UIDL is listed by fingerprints of its messages."""
    by_fingerprint = False
    try:
        pairs = client.uidl()
    except Pop3ServerError as exc:
        if isinstance(exc, Pop3TemporaryError):
            raise
        pairs = _fingerprints(client, notes)
        by_fingerprint = True
    listing = Listing(schedule.listing_keys(pairs))
    listing.by_fingerprint = by_fingerprint
    if len({uidl for _number, uidl in pairs}) < len(pairs):
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


def settled_prefix(account: MailAccount, listing: Listing) -> int | None:
    """How many of the listing's first keys are the listing the last complete sync settled, or None.

    Servers list in message order and add new mail at the end, so a listing that only grew since
    then starts with the settled one: everything in that prefix is stored (or set aside) and nothing
    stored is missing from it. A sync need then only compare what follows, not the whole mailbox.
    None when the listing changed in any other way (or the server has no UIDL): compare it all.
    """
    count = account.listing_length
    if listing.by_fingerprint or not account.listing_digest or count > len(listing):
        return None
    prefix = itertools.islice(listing, count)
    if schedule.listing_digest(prefix, identity=schedule.identity(account)) != account.listing_digest:
        return None
    return count


def new_messages(account: MailAccount, listing: dict[str, int], prefix: int | None = None) -> list[tuple[str, int]]:
    """``(uidl, message number)`` of the listed messages this account has not stored (nor set aside).

    ``prefix``: ``settled_prefix``'s count; only the keys after it are looked up.
    """
    if prefix is None:
        known = _known_uidls(account)
        return [(uidl, number) for uidl, number in listing.items() if uidl not in known]
    added = list(itertools.islice(listing.items(), prefix, None))
    known = _known_among(account, [uidl for uidl, _number in added])
    return [(uidl, number) for uidl, number in added if uidl not in known]


def unchanged_since_settled(account: MailAccount, listing: Listing, prefix: int | None) -> str:
    """The listing's digest if it is the one the last complete sync left with nothing to do, else "".

    Then nothing is new and nothing needs deleting that was not already due, so what is stored
    need not be read: a no-change sync costs a few queries however large the mailbox.
    """
    return account.listing_digest if prefix is not None and prefix == len(listing) else ""


def deletions_due(account: MailAccount, policy) -> bool:
    """Whether the policy wants a DELE now that the last complete sync did not send."""
    if account.deletion_due_at is not None and account.deletion_due_at <= timezone.now():
        return True
    if policy.mirror:
        return Message.objects.filter(account=account, server_state=ServerState.DELETE_PENDING).exists()
    return False


def settled(
    account: MailAccount, policy, listing: Listing, deleted: set[str], *, fetched_any: bool, prefix: int | None
) -> tuple[str, int, dt.datetime | None]:
    """``(digest, length, deletion_due_at)`` after a sync whose DELEs all went through; "" and 0 if anything is left.

    Left: a new message that failed and waits for a retry, or a copy the policy would delete but keeps
    because its stored file is damaged (see ``deletion.messages_to_delete``). ``prefix`` as for
    ``new_messages``: only what follows it can have been new.
    """
    if listing.by_fingerprint:
        return "", 0, None
    remaining = [uidl for uidl in listing if uidl not in deleted]
    if fetched_any:
        if prefix is None:
            unsettled = remaining
            known = _known_uidls(account)
        else:
            unsettled = [uidl for uidl in itertools.islice(listing, prefix, None) if uidl not in deleted]
            known = _known_among(account, unsettled)
        if any(uidl not in known for uidl in unsettled):
            return "", 0, None
    deletes = policy.delete_after_fetch or policy.mirror or policy.delete_after_days is not None
    if deletes and Message.objects.filter(account=account, raw_path__in=DamagedFile.objects.values("relpath")).exists():
        return "", 0, None
    due_at = None
    if policy.delete_after_days is not None:
        oldest = (
            Message.objects.filter(account=account, server_state=ServerState.ON_SERVER)
            .order_by("received_at")
            .values_list("received_at", flat=True)
            .first()
        )
        if oldest is not None:
            due_at = oldest + dt.timedelta(days=policy.delete_after_days)
    return schedule.listing_digest(remaining, identity=schedule.identity(account)), len(remaining), due_at


def _known_uidls(account: MailAccount) -> set[str]:
    """Every UIDL the account has stored or set aside."""
    return _known(account, Q())


KNOWN_CHUNK = 1000  # UIDLs per lookup


def _known_among(account: MailAccount, uidls: list[str]) -> set[str]:
    """Which of ``uidls`` the account has stored or set aside: index lookups, not the whole mailbox."""
    known: set[str] = set()
    for start in range(0, len(uidls), KNOWN_CHUNK):
        known |= _known(account, Q(uidl__in=uidls[start : start + KNOWN_CHUNK]))
    return known


def _known(account: MailAccount, among: Q) -> set[str]:
    live = ~Q(server_state=ServerState.GONE)
    known = set(Message.objects.filter(live, among, account=account).values_list("uidl", flat=True))
    known.update(UidlAlias.objects.filter(live, among, account=account).values_list("uidl", flat=True))
    # Quarantined and too-large messages wait for the user's "retry".
    known.update(
        FetchFailure.objects.filter(among, account=account)
        .filter(Q(quarantined_at__isnull=False) | Q(reason=FetchFailure.Reason.TOO_LARGE))
        .values_list("uidl", flat=True)
    )
    return known


def reconcile_missing(account: MailAccount, listing: dict[str, int], prefix: int | None) -> None:
    """Copies the server no longer lists are gone (deleted elsewhere, or expired).

    With a settled prefix (``settled_prefix``) nothing stored can be missing: every copy stored up to
    the last complete sync is in it, and this sync cleared the digest before it stored anything more.
    """
    if prefix is not None:
        return
    live = Message.objects.filter(account=account).exclude(server_state=ServerState.GONE)
    missing = [pk for pk, uidl in live.values_list("id", "uidl") if uidl not in listing]
    if missing:
        pagecache.touch_message_pages([account.owner_id])  # conversation pages show the server copy's state
        Message.objects.filter(id__in=missing).update(server_state=ServerState.GONE)
        Message.objects.filter(id__in=missing, folder="purged").delete()
