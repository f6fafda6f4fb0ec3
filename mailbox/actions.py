"""What people do to their messages: read, star, move, archive, delete, undo.

Every function takes the owner explicitly and only touches that owner's rows,
so a forged id from another user changes nothing (invariant 7).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import folders, store
from .models import Folder, Message, ServerState

# Sent is listed so that undoing a delete puts sent mail back where it was.
MOVABLE_TO = {Folder.INBOX, Folder.ARCHIVE, Folder.SPAM, Folder.TRASH, Folder.SENT}


class ActionError(ValueError):
    pass


def owned(owner_id: int, ids) -> QuerySet:
    """The owner's messages among ``ids``; tombstones (deleted for good) are never acted on again."""
    return Message.objects.filter(owner_id=owner_id, id__in=list(ids)).exclude(folder=Folder.PURGED)


@transaction.atomic
def set_seen(owner_id: int, ids, seen: bool) -> int:
    return owned(owner_id, ids).update(seen=seen)


@transaction.atomic
def set_flagged(owner_id: int, ids, flagged: bool) -> int:
    return owned(owner_id, ids).update(flagged=flagged)


@transaction.atomic
def move(owner_id: int, ids, folder: str) -> dict[int, str]:
    """Move to ``folder``; returns each message's previous folder (for undo)."""
    if not can_move_to(owner_id, folder):
        raise ActionError(f"Cannot move messages to {folder!r}.")
    rows = owned(owner_id, ids).exclude(folder=folder)
    previous = dict(rows.values_list("id", "folder"))
    moved = Message.objects.filter(owner_id=owner_id, id__in=list(previous))
    moved.update(folder=folder, deleted_at=timezone.now() if folder == Folder.TRASH else None)
    _sync_server_state(moved, folder)
    return previous


def can_move_to(owner_id: int, folder: str) -> bool:
    """A system folder people file into, or one of the owner's own folders (never another user's)."""
    return folder in MOVABLE_TO or folders.is_owned_slug(owner_id, folder)


def _sync_server_state(rows: QuerySet, folder: str) -> None:
    """A message taken back out of the trash is wanted: never DELE it (for rows marked before)."""
    if folder != Folder.TRASH:
        rows.filter(server_state=ServerState.DELETE_PENDING).update(server_state=ServerState.ON_SERVER)


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
        store.purge_messages(rows.filter(server_state=ServerState.GONE))
        tombstones = Message.objects.filter(id__in=ids)
        store.release_files(tombstones)
        tombstones.update(
            folder=Folder.PURGED, raw_path="", snippet="", search_text="", html_cache="", html_cache_meta={}
        )
    return len(ids)


@transaction.atomic
def restore(owner_id: int, previous: dict[int, str]) -> int:
    """Undo a move: put each message back where it was."""
    restored = 0
    by_folder: dict[str, list[int]] = {}
    allowed: dict[str, bool] = {}
    for message_id, folder in previous.items():
        if folder not in allowed:
            allowed[folder] = can_move_to(owner_id, folder)
        if allowed[folder]:
            by_folder.setdefault(folder, []).append(int(message_id))
    for folder, message_ids in by_folder.items():
        rows = owned(owner_id, message_ids)
        restored += rows.update(folder=folder, deleted_at=timezone.now() if folder == Folder.TRASH else None)
        _sync_server_state(owned(owner_id, message_ids), folder)
    return restored


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
