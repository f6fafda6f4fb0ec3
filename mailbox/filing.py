"""Filing messages: moving them between folders, and back (the undo of a move).

What people do from a list and what a bulk job does to thousands of messages
(mailbox/bulkjobs.py, run by a worker) is this same code. mailbox/actions.py
offers it with the other actions; this module publishes no task, so the work a
task runs never imports the module that publishes it.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from spam import actions as spam_actions
from webpop.lib import pagecache

from . import folders
from .models import Folder, Message, ServerState

# Sent is listed so that undoing a delete puts sent mail back where it was.
MOVABLE_TO = {Folder.INBOX, Folder.ARCHIVE, Folder.SPAM, Folder.TRASH, Folder.SENT}


class ActionError(ValueError):
    pass


def owned(owner_id: int, ids) -> QuerySet:
    """The owner's messages among ``ids``; tombstones (deleted for good) are never acted on again."""
    return Message.objects.filter(owner_id=owner_id, id__in=list(ids)).exclude(folder=Folder.PURGED)


def touched(owner_id: int, changed: int) -> int:
    """``changed`` rows of the owner's mail: if any, their folder pages are out of date."""
    if changed:
        pagecache.touch([owner_id])
    return changed


@transaction.atomic
def move(owner_id: int, ids, folder: str) -> dict[int, str]:
    """Move to ``folder``; returns each message's previous folder (for undo)."""
    if not can_move_to(owner_id, folder):
        raise ActionError(f"Cannot move messages to {folder!r}.")
    rows = owned(owner_id, ids).exclude(folder=folder)
    previous = dict(rows.values_list("id", "folder"))
    moved = Message.objects.filter(owner_id=owner_id, id__in=list(previous))
    touched(owner_id, moved.update(folder=folder, deleted_at=timezone.now() if folder == Folder.TRASH else None))
    sync_server_state(moved, folder)
    spam_actions.moved(owner_id, previous, folder)  # into Spam or out of it: trains the owner's filter
    return previous


def can_move_to(owner_id: int, folder: str) -> bool:
    """A system folder people file into, or one of the owner's own folders (never another user's)."""
    return folder in MOVABLE_TO or folders.is_owned_slug(owner_id, folder)


def sync_server_state(rows: QuerySet, folder: str) -> None:
    """A message taken back out of the trash is wanted: never DELE it (for rows marked before)."""
    if folder != Folder.TRASH:
        rows.filter(server_state=ServerState.DELETE_PENDING).update(server_state=ServerState.ON_SERVER)


@transaction.atomic
def restore(owner_id: int, previous: dict[int, str]) -> int:
    """Undo a move: put each message back where it was."""
    restored = 0
    by_folder: dict[str, list[int]] = {}
    allowed: dict[str, bool] = {}
    for message_id, folder in previous.items():
        if folder not in allowed:
            allowed[folder] = folder == Folder.SNOOZED or can_move_to(owner_id, folder)
        if allowed[folder]:
            by_folder.setdefault(folder, []).append(int(message_id))
    for folder, message_ids in by_folder.items():
        rows = owned(owner_id, message_ids)
        if folder == Folder.SNOOZED:  # back to sleep only with the time it had
            rows = rows.filter(snoozed_until__isnull=False)
        restored += rows.update(folder=folder, deleted_at=timezone.now() if folder == Folder.TRASH else None)
        sync_server_state(owned(owner_id, message_ids), folder)
    spam_actions.undone(owner_id, [int(message_id) for message_id in previous])
    return touched(owner_id, restored)
