"""A user's storage quota: how much of it is left for new mail."""

from __future__ import annotations

from django.db.models import Sum

from accounts.models import Profile

from .models import Folder, Message


def left(owner_id: int) -> int | None:
    """Bytes the owner may still store; None without a quota (it may be negative: over the quota).

    Counts every stored message but the tombstones of mail deleted for good. The sum is read from
    ``msg_owner_size_idx`` alone, so it costs the owner's index entries, not their rows.
    """
    quota = (Profile.objects.filter(user_id=owner_id).first() or Profile(user_id=owner_id)).effective_quota_bytes
    if quota is None:
        return None
    used = Message.objects.filter(owner_id=owner_id).exclude(folder=Folder.PURGED).aggregate(total=Sum("size"))
    return quota - (used["total"] or 0)
