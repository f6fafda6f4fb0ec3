"""When an account is polled next: adaptive intervals, jitter, digests of a listing. Pure, no I/O.

An account that receives mail often is polled at the interval its owner chose; each poll that finds
nothing stretches the interval, up to the owner's upper bound, and new mail brings it back at once.
Every next poll is jittered so that accounts added together (an import of many users) do not stay
in step and hit servers in waves.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable

GROWTH = 1.5  # a quiet account's interval after each poll that found nothing
JITTER = 0.1  # ± this share of the interval


def next_interval(current: int | None, fastest: int, slowest: int | None, *, got_mail: bool) -> int:
    """The interval after a poll: ``fastest`` after new mail, else ``current`` stretched up to ``slowest``.

    ``slowest`` None (or not above ``fastest``): a fixed interval, as the owner chose it.
    """
    if not slowest or slowest <= fastest or got_mail:
        return fastest
    return min(slowest, max(fastest, round((current or fastest) * GROWTH)))


def jittered(seconds: float, rng: random.Random | None = None) -> float:
    return seconds * (rng or random).uniform(1 - JITTER, 1 + JITTER)


def identity(account) -> str:
    """What a stored digest is bound to besides the listing: server, user name, deletion policy."""
    return f"{account.host}:{account.port}\n{account.username}\n{account.policy}"


def listing_keys(pairs: Iterable[tuple[int, str]]) -> dict[str, int]:
    """``{uidl: message number}`` from a UIDL listing.

    A UIDL the server (wrongly) gives to several messages keeps its first message; the others get
    ``#2``, ``#3``… in listing order, so none is lost and a sync and a check see the same keys.
    """
    listing: dict[str, int] = {}
    seen: dict[str, int] = {}
    for number, uidl in pairs:
        seen[uidl] = seen.get(uidl, 0) + 1
        listing[uidl if seen[uidl] == 1 else f"{uidl}#{seen[uidl]}"] = number
    return listing


def listing_digest(uidls: Iterable[str], *, identity: str) -> str:
    """A digest of a POP3 listing (UIDLs in the server's order) and what decides how it is handled.

    ``identity`` holds the account's server, user name and deletion policy: when any of them changes,
    no stored digest matches and the next poll is a full sync. Order matters and need not be sorted:
    servers list in message order, which stays the same while nothing arrives or is deleted.
    """
    digest = hashlib.sha256(identity.encode())
    for uidl in uidls:
        digest.update(b"\n")
        digest.update(uidl.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()
