"""Every change to a user's contacts: recording mail sent, editing, importing, seeding from Sent."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from mailbox import mime
from mailbox.models import Folder, Message
from webpop.lib import pagecache

from . import search
from .models import Contact, ContactEmail, ContactKey

log = logging.getLogger(__name__)

WEIGHT_SENT = 1.0
WEIGHT_REPLY = 2.0  # answering someone says more about who matters than writing to a list of people
MAX_ADDRESSES = 20
SEED_MESSAGES = 5000  # newest sent messages looked at when filling the address book from Sent


@dataclass
class Card:
    """A contact as edited or imported: what webpop keeps of a person."""

    name: str = ""
    emails: list[str] = field(default_factory=list)
    notes: str = ""


def _days(when: dt.datetime) -> float:
    return when.timestamp() / 86400.0


def _reindex(contact: Contact) -> None:
    addresses = list(contact.emails.values_list("address", flat=True))
    wanted = search.keys_for(contact.name, addresses)
    have = set(ContactKey.objects.filter(contact=contact).values_list("key", flat=True))
    ContactKey.objects.filter(contact=contact, key__in=have - wanted).delete()
    ContactKey.objects.bulk_create(
        [ContactKey(owner_id=contact.owner_id, contact=contact, key=key) for key in sorted(wanted - have)]
    )


def _clean_addresses(emails: list[str]) -> list[str]:
    seen, found = set(), []
    for address in emails:
        address = address.strip()
        if address and "@" in address and address.lower() not in seen:
            seen.add(address.lower())
            found.append(address[:320])
    return found[:MAX_ADDRESSES]


def _set_addresses(contact: Contact, emails: list[str]) -> list[str]:
    """Give the contact exactly these addresses; ones another contact of the user has are left there."""
    emails = _clean_addresses(emails)
    taken = set(
        ContactEmail.objects.filter(owner_id=contact.owner_id, address_key__in=[a.lower() for a in emails])
        .exclude(contact=contact)
        .values_list("address_key", flat=True)
    )
    kept = [a for a in emails if a.lower() not in taken]
    ContactEmail.objects.filter(contact=contact).delete()
    ContactEmail.objects.bulk_create(
        [
            ContactEmail(
                contact=contact,
                owner_id=contact.owner_id,
                address=a,
                address_key=a.lower(),
                position=i,
                domain_skeleton=ContactEmail.skeleton_of(a),
            )
            for i, a in enumerate(kept)
        ]
    )
    return [a for a in emails if a.lower() in taken]


@transaction.atomic
def create(owner_id: int, card: Card) -> tuple[Contact, list[str]]:
    """A new contact; returns it and the addresses left out because another contact has them."""
    now = timezone.now()
    contact = Contact.objects.create(
        owner_id=owner_id, name=card.name.strip()[:255], notes=card.notes,
        rank=search.rank_after(None, 1.0, _days(now)),  # as if written to once today: new contacts are suggested
        created_at=now, updated_at=now,
    )  # fmt: skip
    taken = _set_addresses(contact, card.emails)
    _reindex(contact)
    pagecache.touch_message_pages([owner_id])  # a conversation page warns of look-alikes of contacts' domains
    return contact, taken


@transaction.atomic
def update(owner_id: int, contact_id: int, card: Card) -> tuple[Contact, list[str]]:
    contact = Contact.objects.select_for_update().get(id=contact_id, owner_id=owner_id)
    contact.name, contact.notes, contact.updated_at = card.name.strip()[:255], card.notes, timezone.now()
    contact.save(update_fields=["name", "notes", "updated_at"])
    taken = _set_addresses(contact, card.emails)
    _reindex(contact)
    pagecache.touch_message_pages([owner_id])  # a conversation page warns of look-alikes of contacts' domains
    return contact, taken


@transaction.atomic
def delete(owner_id: int, contact_id: int) -> bool:
    deleted = Contact.objects.filter(id=contact_id, owner_id=owner_id).delete()[0] > 0
    if deleted:
        pagecache.touch_message_pages([owner_id])  # its domains are no longer known
    return deleted


def record(owner_id: int, people: list[tuple[str, str]], when: dt.datetime, weight: float = WEIGHT_SENT) -> None:
    """The user wrote to these (name, address) pairs at ``when``: create or rank up their contacts."""
    for name, address in people:
        address = (address or "").strip()
        if "@" not in address or len(address) > 320:
            continue
        for _attempt in range(2):  # a concurrent send may create the same contact first: then rank that one
            try:
                _record_one(owner_id, name or "", address, when, weight)
                break
            except IntegrityError:
                continue


@transaction.atomic
def _record_one(owner_id: int, name: str, address: str, when: dt.datetime, weight: float) -> None:
    email = ContactEmail.objects.filter(owner_id=owner_id, address_key=address.lower()).first()
    if email is None:
        contact = Contact.objects.create(
            owner_id=owner_id, name=name.strip()[:255], rank=search.rank_after(None, weight, _days(when)),
            times_contacted=1, last_contacted=when,
        )  # fmt: skip
        ContactEmail.objects.create(
            contact=contact, owner_id=owner_id, address=address, address_key=address.lower(),
            domain_skeleton=ContactEmail.skeleton_of(address),
        )  # fmt: skip
        _reindex(contact)
        pagecache.touch_message_pages([owner_id])  # a new address: its domain is known now
        return
    contact = Contact.objects.select_for_update().get(id=email.contact_id)
    contact.rank = search.rank_after(contact.rank, weight, _days(when))
    contact.times_contacted += 1
    contact.last_contacted = max(filter(None, [contact.last_contacted, when]))
    fields = ["rank", "times_contacted", "last_contacted"]
    if not contact.name and name.strip():  # a name the user typed wins over one from mail
        contact.name = name.strip()[:255]
        fields.append("name")
    contact.save(update_fields=fields)
    if "name" in fields:
        _reindex(contact)


def _people(*fields: str) -> list[tuple[str, str]]:
    found, seen = [], set()
    for text in fields:
        for _group, entries in mime.parse_addresses(text or ""):
            for _written, pair in entries:
                if pair and pair[1].lower() not in seen:
                    seen.add(pair[1].lower())
                    found.append(pair)
    return found


def record_sent(outgoing) -> None:
    """After a message went out: its recipients rank up (more for a reply). Never fails the send."""
    try:
        weight = WEIGHT_REPLY if outgoing.kind in ("reply", "reply_all") else WEIGHT_SENT
        people = _people(outgoing.to, outgoing.cc, outgoing.bcc)
        record(outgoing.owner_id, people, outgoing.sent_at or timezone.now(), weight)
    except Exception:  # the address book is a convenience: the message is sent and filed
        log.exception("contacts not recorded outgoing=%s", outgoing.id)


def seed_from_sent(owner_id: int) -> int:
    """Fill the address book from the user's Sent mail (replies weigh more); returns the messages read.

    Runs only while no contact has been recorded from mail yet, so no message is counted twice.
    """
    if Contact.objects.filter(owner_id=owner_id, times_contacted__gt=0).exists():
        return 0
    rows = (
        Message.objects.filter(owner_id=owner_id, folder=Folder.SENT)
        .order_by("-date", "-id")
        .values_list("to", "cc", "date", "in_reply_to")[:SEED_MESSAGES]
    )
    count = 0
    for to, cc, date, in_reply_to in rows:
        record(owner_id, _people(to, cc), date, WEIGHT_REPLY if in_reply_to else WEIGHT_SENT)
        count += 1
    return count


def import_cards(owner_id: int, cards: list[Card]) -> dict[str, int]:
    """vCards into the user's book: a card sharing an address with a contact updates it, others are new.

    Each card goes through ``create`` or ``update``, which replace the conversation pages in its transaction.
    """
    created = updated = 0
    for card in cards:
        with transaction.atomic():
            addresses = _clean_addresses(card.emails)
            existing = (
                ContactEmail.objects.filter(owner_id=owner_id, address_key__in=[a.lower() for a in addresses])
                .values_list("contact_id", flat=True)
                .first()
            )
            if existing is None:
                create(owner_id, card)
                created += 1
                continue
            contact = Contact.objects.select_for_update().get(id=existing)
            have = list(contact.emails.values_list("address", flat=True))
            merged = Card(
                name=card.name or contact.name,
                emails=have + [a for a in addresses if a.lower() not in {h.lower() for h in have}],
                notes=card.notes or contact.notes,
            )
            update(owner_id, contact.id, merged)
            updated += 1
    return {"created": created, "updated": updated}
