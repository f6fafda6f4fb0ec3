"""The trust line of a message's header: the scan's SenderTrust row and the From line, judged on view."""

from __future__ import annotations

import functools

from django.db import connection

from contacts.models import ContactEmail
from mailbox.models import Message
from outgoing.models import Identity

from . import trust
from .models import SenderTrust


def known_domains(owner_id: int) -> set[str]:
    """The domains of the user's contacts (the address book and everyone they wrote to) and their own."""
    contacts = ContactEmail.objects.filter(owner_id=owner_id).order_by().values_list("address_key", flat=True)
    own = Identity.objects.filter(account__owner_id=owner_id).order_by().values_list("address", flat=True)
    return {address.rpartition("@")[2].lower() for address in contacts.union(own) if "@" in address}


class StoredKnownDomains:
    """The user's known domains as stored: only those sharing the sender's skeleton are read (an index lookup).

    The contacts' addresses carry their domain's skeleton (ContactEmail.domain_skeleton); the user's own
    addresses are few and judged as they are.
    """

    def __init__(self, owner_id: int):
        self.owner_id = owner_id

    def imitated(self, domain: str) -> str:
        if not domain:
            return ""
        params = {"owner": self.owner_id, "skeleton": trust.address_skeleton(f"@{domain}")}
        with connection.cursor() as cursor:
            cursor.execute(_ALIKE_SQL.format(**_tables()), params)
            alike = [address for (address,) in cursor.fetchall()]
        return trust.KnownDomains(a.rpartition("@")[2].lower() for a in alike if "@" in a).imitated(domain)


# The contacts whose domain has the sender's skeleton (contacts_email_skeleton_idx) and the user's own
# addresses, as ContactEmail.objects.filter(owner_id=, domain_skeleton=).values_list("address_key")
# .union(Identity.objects.filter(account__owner_id=).values_list("address")) reads them, in plain SQL:
# every message page runs it, and the ORM took longer to build the query than the database to run it.
_ALIKE_SQL = """
SELECT address_key FROM {contacts} WHERE owner_id = %(owner)s AND domain_skeleton = %(skeleton)s
UNION
SELECT i.address FROM {identities} i JOIN {accounts} a ON a.id = i.account_id
WHERE a.owner_id = %(owner)s
"""


@functools.cache
def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "contacts": quote(ContactEmail._meta.db_table),
        "identities": quote(Identity._meta.db_table),
        "accounts": quote(Identity._meta.get_field("account").related_model._meta.db_table),
    }


def for_message(message: Message, domains: set[str] | None = None) -> trust.Trust:
    """The trust line of ``message``; its SenderTrust row is read here unless it came with the message
    (``select_related("sender_trust")``: one query less for a page that reads the message anyway)."""
    relation = Message._meta.get_field("sender_trust")
    if relation.is_cached(message):
        row = relation.get_cached_value(message)
    else:
        row = SenderTrust.objects.filter(message_id=message.id).first()
    return trust.assess(
        message.from_name,
        message.from_email,
        row.auth() if row else trust.Auth(),
        reply_to=row.reply_to if row else "",
        known_domains=StoredKnownDomains(message.owner_id) if domains is None else domains,
    )
