"""Recent mail with a contact: the user's own messages from or to any of the contact's addresses."""

from __future__ import annotations

from django.db.models import Q

from mailbox.models import Folder, Message

RECENT = 20


def recent_mail(owner_id: int, addresses: list[str], limit: int = RECENT) -> list[Message]:
    if not addresses:
        return []
    match = Q()
    for address in addresses:
        match |= Q(from_email__iexact=address) | Q(to__icontains=address) | Q(cc__icontains=address)
    return list(
        Message.objects.filter(owner_id=owner_id)
        .exclude(folder__in=[Folder.PURGED, Folder.SPAM])
        .filter(match)
        .only("id", "subject", "from_name", "from_email", "to", "date", "folder", "seen")
        .order_by("-date", "-id")[:limit]
    )
