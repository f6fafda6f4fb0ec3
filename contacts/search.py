"""Prefix search over the user's contacts: the keys stored for each contact, and the suggestions read from them."""

from __future__ import annotations

import math
import re
import unicodedata

from django.db import connection

from .models import Contact, ContactEmail, ContactKey

HALF_LIFE_DAYS = 30.0  # a message sent a month ago counts half as much as one sent today
MAX_KEY = 320
# Keys read from one prefix's range before ranking its contacts; a contact has a few keys per word
# (name, address words, whole address), so this is some hundreds of contacts.
CANDIDATE_KEYS = 1500
_WORD = re.compile(r"[^\W_]+")


def normalize(text: str) -> str:
    """Case- and accent-insensitive form: "Jürgen" and "JURGEN" both give "jurgen"."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def keys_for(name: str, addresses: list[str]) -> set[str]:
    """Every word of the name and of each address, and each whole address: what a typed prefix may start."""
    keys = set(_WORD.findall(normalize(name)))
    for address in addresses:
        address = normalize(address)
        keys.add(address)
        keys.update(_WORD.findall(address))
    return {key[:MAX_KEY] for key in keys if key}


def query_words(q: str) -> list[str]:
    return _WORD.findall(normalize(q))[:5]


def _address_like(q: str) -> str:
    """The typed text when it reads like the start of an address ("j.wagner", "anna@fir"), else ""."""
    q = normalize(q.strip())
    return q[:MAX_KEY] if q and not any(c.isspace() for c in q) and re.search(r"[.@+_-]", q) else ""


def rank_after(rank: float | None, weight: float, when_days: float) -> float:
    """log2(sum of weight * 2^(days/half-life)): adding one contact event to a contact's frecency.

    Comparing these numbers compares the decayed scores at any moment, because every score decays alike.
    """
    added = math.log2(weight) + when_days / HALF_LIFE_DAYS
    if rank is None:
        return added
    high, low = max(rank, added), min(rank, added)
    return high + math.log2(1.0 + 2.0 ** (low - high))


def suggest(owner_id: int, q: str, limit: int = 10) -> list[dict[str, str]]:
    """The user's contacts whose name or address words start with each typed word, best ranked first.

    One entry per address, the addresses that match the typed text first.
    """
    words = query_words(q)
    if not words:
        return []
    found = []
    whole = _address_like(q)
    if whole:  # one index range over whole addresses, before intersecting the words' (wider) ranges
        found = _best(owner_id, [whole], limit, range_first=True)
    if not found:
        found = _best(owner_id, words, limit, range_first=len(set(words)) > 1)
    if not found:
        return []
    addresses: dict[int, list[str]] = {}
    for contact_id, address in ContactEmail.objects.filter(contact_id__in=[c for c, _ in found]).values_list(
        "contact_id", "address"
    ):
        addresses.setdefault(contact_id, []).append(address)
    results = []
    for contact_id, name in found:
        mine = addresses.get(contact_id, [])
        mine.sort(key=lambda a: not any(k.startswith(w) for k in keys_for("", [a]) for w in [*words, whole] if w))
        results.extend({"name": name, "address": address} for address in mine)
    return results[:limit]


def _best(owner_id: int, words: list[str], limit: int, range_first: bool) -> list[tuple[int, str]]:
    """The best ranked contacts with a key starting with every word: (id, name) pairs.

    range_first for several words or a whole address: left to itself, PostgreSQL multiplies the words'
    estimates (or misjudges a narrow address range) and walks all contacts in rank order looking for them.
    One word is left to its choice between the range and the rank walk.
    """
    keys = ContactKey.objects.filter(owner_id=owner_id)
    if range_first:
        # The narrowest range (longer words first: they usually are), if one is narrow enough.
        for first in sorted(set(words), key=len, reverse=True):
            if keys.filter(key__startswith=first)[: CANDIDATE_KEYS + 1].count() <= CANDIDATE_KEYS:
                return _ranked_from(owner_id, first, [w for w in set(words) if w != first], limit)
    # Each range wide: matches are dense, so the walk in rank order meets enough of them soon.
    contacts = Contact.objects.filter(owner_id=owner_id)
    for word in words:
        contacts = contacts.filter(id__in=keys.filter(key__startswith=word).values("contact_id"))
    return list(contacts.order_by("-rank", "id").values_list("id", "name")[:limit])


def _ranked_from(owner_id: int, first: str, others: list[str], limit: int) -> list[tuple[int, str]]:
    """The contacts of ``first``'s key range that match the ``others`` too, best ranked first.

    The range is a materialized CTE, so the database reads it first instead of walking the contacts in rank
    order hoping to meet matches (for a rare pair of words: the whole address book, a key probe for each).
    The ORM cannot say so; PostgreSQL and SQLite both can.
    """
    # Only table names go into the text (quoted); every value is a parameter.
    contacts, keys = (connection.ops.quote_name(m._meta.db_table) for m in (Contact, ContactKey))
    also = "".join(
        f" AND EXISTS (SELECT 1 FROM {keys} k WHERE k.contact_id = c.id AND k.owner_id = %s"  # noqa: S608
        " AND k.\"key\" LIKE %s ESCAPE '\\')"
        for _ in others
    )
    sql = (
        f'WITH matched AS MATERIALIZED (SELECT contact_id FROM {keys} WHERE owner_id = %s AND "key" LIKE %s'  # noqa: S608
        f" ESCAPE '\\') SELECT c.id, c.name FROM {contacts} c WHERE c.owner_id = %s"
        f" AND c.id IN (SELECT contact_id FROM matched){also} ORDER BY c.rank DESC, c.id LIMIT %s"
    )
    params = [owner_id, _prefix_pattern(first), owner_id]
    for word in others:
        params += [owner_id, _prefix_pattern(word)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [(row[0], row[1]) for row in cursor.fetchall()]


def _prefix_pattern(prefix: str) -> str:
    """LIKE pattern for keys starting with ``prefix`` (an address may hold ``%`` or ``_``)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
