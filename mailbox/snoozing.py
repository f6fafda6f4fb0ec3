"""Snooze: putting conversations away until a time, and bringing them back (beat's sweep, or new mail).

The work the wake-up task runs; mailbox/actions.py offers ``snooze`` with the other actions.
Nothing here publishes a task.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from webpop.lib import pagecache

from .filing import owned, touched
from .models import Folder, Message

# Where mail is never snoozed from: what was sent, judged or thrown away.
NOT_SNOOZED = [Folder.SENT, Folder.SPAM, Folder.TRASH, Folder.PURGED]
WAKE_BATCH = 500


@transaction.atomic
def snooze(owner_id: int, ids, until: dt.datetime) -> dict[int, str]:
    """Put the conversations of these messages away until ``until``; returns previous folders (for undo).

    A conversation is taken from the Inbox and from the folders the chosen messages are in
    (one filed in Archive is snoozed from there); its mail in Sent, Spam and Trash stays.
    Snoozing snoozed mail again sets its new time.
    """
    chosen = list(owned(owner_id, ids).exclude(folder__in=NOT_SNOOZED).values_list("id", "folder", "thread_id"))
    if not chosen:
        return {}
    threads = {thread for _pk, _folder, thread in chosen if thread}
    taken_from = {Folder.INBOX} | {folder for _pk, folder, _thread in chosen}
    conversation = Message.objects.filter(owner_id=owner_id, thread_id__in=threads, folder__in=taken_from)
    previous = dict(conversation.values_list("id", "folder")) | {pk: folder for pk, folder, _thread in chosen}
    Message.objects.filter(owner_id=owner_id, id__in=list(previous)).update(folder=Folder.SNOOZED, snoozed_until=until)
    pagecache.touch([owner_id])
    return previous


def wake_due(now: dt.datetime | None = None, limit: int = WAKE_BATCH) -> int:
    """Return snoozed mail whose time has come to the Inbox, on top and unread (beat's sweep).

    On top: ``surfaced_at`` is the time it came back, and the Inbox lists it as if it had
    arrived then (Message.INBOX_ORDER). Unread: the newest message of each conversation, as a
    conversation that comes back is news again. Up to ``limit`` messages, soonest due first;
    returns how many.

    The claim is one conditional UPDATE that returns what it changed: two sweeps at once (a
    retried task, a second beat after a failover) each wake only the rows they changed, so a
    message is woken, and marked unread, once. On PostgreSQL a second sweep skips the rows
    the first has locked rather than waiting for them.
    """
    now = now or timezone.now()
    quote = connection.ops.quote_name
    table, date = quote(Message._meta.db_table), quote("date")
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    stamp = connection.ops.adapt_datetimefield_value(now)
    # Only the table's and columns' names are formatted in; every value is a parameter. The claim is a
    # CTE, run once: as a subquery of the UPDATE, PostgreSQL may run it again for later rows, and
    # with the first rows changed by then it returns more, past the LIMIT.
    sql = (
        f"WITH due AS (SELECT id FROM {table} WHERE folder = %s AND snoozed_until <= %s "  # noqa: S608
        f"ORDER BY snoozed_until, id LIMIT %s{skip_locked}) "
        f"UPDATE {table} SET folder = %s, snoozed_until = NULL, "
        f"surfaced_at = CASE WHEN {date} > %s THEN {date} ELSE %s END "
        f"FROM due WHERE {table}.id = due.id AND folder = %s AND snoozed_until <= %s RETURNING {table}.id"
    )
    params = [Folder.SNOOZED.value, stamp, limit, Folder.INBOX.value, stamp, stamp, Folder.SNOOZED.value, stamp]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            woken = [pk for (pk,) in cursor.fetchall()]
        if not woken:
            return 0
        newest: dict[tuple[int, int], tuple[dt.datetime, int]] = {}
        owners = set()
        for pk, owner_id, thread_id, date_ in Message.objects.filter(id__in=woken).values_list(
            "id", "owner_id", "thread_id", "date"
        ):
            owners.add(owner_id)
            conversation = (owner_id, thread_id or pk)
            newest[conversation] = max(newest.get(conversation, (date_, pk)), (date_, pk))
        Message.objects.filter(owner_id__in=owners, id__in=[pk for _date, pk in newest.values()]).update(seen=False)
        pagecache.touch(owners)
    return len(woken)


def wake_all_due(now: dt.datetime | None = None) -> int:
    """``wake_due`` until nothing due is left; returns the total."""
    total = 0
    while woken := wake_due(now):
        total += woken
    return total


def wake_for_new_mail(messages: list[Message]) -> int:
    """New mail that lands in the Inbox brings its snoozed conversation back with it (as Gmail does).

    ``messages``: newly stored ones of one owner, after rules filed them (mail a rule files
    elsewhere leaves the conversation asleep). The conversation goes back where its dates put
    it: the new message, the newest, is on top. Returns how many messages woke.
    """
    threads = {m.thread_id for m in messages if m.folder == Folder.INBOX and m.thread_id}
    if not threads:
        return 0
    owner_id = messages[0].owner_id
    with transaction.atomic():
        woken = Message.objects.filter(owner_id=owner_id, folder=Folder.SNOOZED, thread_id__in=threads).update(
            folder=Folder.INBOX, snoozed_until=None
        )
        return touched(owner_id, woken)
