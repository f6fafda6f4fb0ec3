"""Deleting mail for good: emptying the trash, the admin's deletion, and trash expiry for every user.

The rows go (or stay as tombstones) and their files are released (``storage_gc.release``) in
one transaction. Nothing here publishes a task: mailbox/actions.py wakes the freeing worker
after commit for what people do, and the expiry task frees after its run.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from webpop.lib import pagecache

from . import storage_gc
from .models import Folder, Message, ServerState


def empty_trash(owner_id: int, ids=None) -> int:
    """Delete messages in the trash for good (all of them, or ``ids``).

    Under the mirror policy this is when the server copy is marked for DELE
    at the next sync. A message whose server copy still exists stays as a
    small tombstone without files, so its UIDL is never fetched again; rows
    whose server copy is gone are removed entirely.
    """
    with transaction.atomic():
        trash = Message.objects.filter(owner_id=owner_id, folder=Folder.TRASH)
        if ids is not None:
            trash = trash.filter(id__in=list(ids))
        trash = trash.select_for_update()
        ids = list(trash.values_list("id", flat=True))
        if not ids:
            return 0
        rows = Message.objects.filter(id__in=ids)
        rows.filter(account__policy__startswith="mirror", server_state=ServerState.ON_SERVER).update(
            server_state=ServerState.DELETE_PENDING
        )
        _purge(ids)
        pagecache.touch([owner_id])
    return len(ids)


def delete_for_good(ids) -> int:
    """Delete any of these messages for good, as the site (the admin) and not their owner.

    The same as emptying the trash, except that no server copy is marked for DELE:
    the owner did not ask for that. Tombstones keep the UIDLs of copies still on
    the server, so the next sync does not fetch them again.
    """
    with transaction.atomic():
        rows = Message.objects.filter(id__in=list(ids)).exclude(folder=Folder.PURGED).select_for_update()
        found = list(rows.values_list("id", "owner_id"))
        _purge([pk for pk, _owner in found])
        pagecache.touch({owner for _pk, owner in found})
    return len(found)


def _purge(ids: list[int]) -> None:
    """Rows whose server copy is gone go entirely; the others become tombstones without files or text."""
    storage_gc.purge_messages(Message.objects.filter(id__in=ids, server_state=ServerState.GONE))
    tombstones = Message.objects.filter(id__in=ids)
    storage_gc.release_files(tombstones)
    tombstones.update(folder=Folder.PURGED, raw_path="", snippet="", search_text="", html_cache="", html_cache_meta={})


def expire_trash(days: int) -> int:
    """Empty what has been in the trash for ``days`` days, for every user."""
    cutoff = timezone.now() - timezone.timedelta(days=days)
    owners = (
        Message.objects.filter(folder=Folder.TRASH, deleted_at__lt=cutoff).values_list("owner_id", flat=True).distinct()
    )
    total = 0
    for owner_id in list(owners):
        old = Message.objects.filter(owner_id=owner_id, folder=Folder.TRASH, deleted_at__lt=cutoff)
        total += empty_trash(owner_id, list(old.values_list("id", flat=True)))
    return total
