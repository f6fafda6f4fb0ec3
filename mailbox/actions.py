"""What people do to their messages: read, star, move, archive, delete, undo.

Every function takes the owner explicitly and only touches that owner's rows,
so a forged id from another user changes nothing (invariant 7).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .models import Folder, Message, ServerState

MOVABLE_TO = {Folder.INBOX, Folder.ARCHIVE, Folder.SPAM, Folder.TRASH}


class ActionError(ValueError):
    pass


def owned(owner_id: int, ids) -> QuerySet:
    return Message.objects.filter(owner_id=owner_id, id__in=list(ids))


@transaction.atomic
def set_seen(owner_id: int, ids, seen: bool) -> int:
    return owned(owner_id, ids).update(seen=seen)


@transaction.atomic
def set_flagged(owner_id: int, ids, flagged: bool) -> int:
    return owned(owner_id, ids).update(flagged=flagged)


@transaction.atomic
def move(owner_id: int, ids, folder: str) -> dict[int, str]:
    """Move to ``folder``; returns each message's previous folder (for undo)."""
    if folder not in MOVABLE_TO:
        raise ActionError(f"Cannot move messages to {folder!r}.")
    rows = owned(owner_id, ids).exclude(folder=folder)
    previous = dict(rows.values_list("id", "folder"))
    moved = Message.objects.filter(id__in=list(previous))
    moved.update(folder=folder, deleted_at=timezone.now() if folder == Folder.TRASH else None)
    _sync_server_state(moved, folder)
    return previous


def _sync_server_state(rows: QuerySet, folder: str) -> None:
    """Under the mirror policy, Trash means "delete on the server at the next sync"; leaving it undoes that."""
    if folder == Folder.TRASH:
        rows.filter(account__policy__startswith="mirror", server_state=ServerState.ON_SERVER).update(
            server_state=ServerState.DELETE_PENDING
        )
    else:
        rows.filter(server_state=ServerState.DELETE_PENDING).update(server_state=ServerState.ON_SERVER)


@transaction.atomic
def restore(owner_id: int, previous: dict[int, str]) -> int:
    """Undo a move: put each message back where it was."""
    restored = 0
    by_folder: dict[str, list[int]] = {}
    for message_id, folder in previous.items():
        if folder in MOVABLE_TO:
            by_folder.setdefault(folder, []).append(int(message_id))
    for folder, message_ids in by_folder.items():
        rows = owned(owner_id, message_ids)
        restored += rows.update(folder=folder, deleted_at=timezone.now() if folder == Folder.TRASH else None)
        _sync_server_state(owned(owner_id, message_ids), folder)
    return restored
