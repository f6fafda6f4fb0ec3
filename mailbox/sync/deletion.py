"""The account's deletion policy on the server: which stored copies to DELE now, and marking them gone."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import MailAccount
from webpop.lib import pagecache

from ..models import DamagedFile, Message, ServerState, UidlAlias


def messages_to_delete(account: MailAccount, policy, listing: dict[str, int]) -> list[tuple[str, int, str]]:
    """``(kind, pk, uidl)`` of committed copies the policy says to DELE now, still on the server.

    A message whose stored file is known to be missing or damaged keeps its server copy, and so do
    the re-listed copies of it: that copy is what ``verifystore --repair`` restores it from.
    """
    conditions = Q(server_state=ServerState.DELETE_PENDING) if policy.mirror else Q(pk__in=[])
    if policy.delete_after_fetch:
        conditions |= Q(server_state=ServerState.ON_SERVER)
    if policy.delete_after_days is not None:
        cutoff = timezone.now() - dt.timedelta(days=policy.delete_after_days)
        conditions |= Q(server_state=ServerState.ON_SERVER, received_at__lte=cutoff)
    damaged = DamagedFile.objects.values("relpath")
    rows = (
        Message.objects.filter(conditions, account=account)
        .exclude(server_state=ServerState.GONE)
        .exclude(raw_path__in=damaged)
    )
    found = [("message", pk, uidl) for pk, uidl in rows.values_list("id", "uidl") if uidl in listing]
    # Re-listed copies go with the message they duplicate.
    message_ids = {pk for _kind, pk, _uidl in found} if not policy.delete_after_fetch else None
    aliases = (
        UidlAlias.objects.filter(account=account)
        .exclude(server_state=ServerState.GONE)
        .exclude(message__raw_path__in=damaged)
    )
    if message_ids is not None:
        aliases = aliases.filter(message_id__in=message_ids)
    found += [("alias", pk, uidl) for pk, uidl in aliases.values_list("id", "uidl") if uidl in listing]
    return found


def mark_gone(deleted: list[tuple[str, int, str]]) -> int:
    messages = [pk for kind, pk, _uidl in deleted if kind == "message"]
    aliases = [pk for kind, pk, _uidl in deleted if kind == "alias"]
    with transaction.atomic():
        # Their conversation pages show the server copy's state.
        pagecache.touch_message_pages(Message.objects.filter(id__in=messages).values_list("owner_id", flat=True))
        count = Message.objects.filter(id__in=messages).update(server_state=ServerState.GONE)
        UidlAlias.objects.filter(id__in=aliases).update(server_state=ServerState.GONE)
        # Tombstones of mail the user deleted for good are no longer needed once the server copy is gone.
        Message.objects.filter(id__in=messages, folder="purged").delete()
    return count
