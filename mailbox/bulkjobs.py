"""Actions on every message of a folder, view or search ("Select all N"), in the background.

The web request only records a :class:`~mailbox.models.BulkJob` (actions.start_bulk_job);
a worker runs :func:`run`, and a beat sweep (:func:`resume_stalled`) finds jobs whose task
was lost or whose worker stopped (invariant 8).

* A job is claimed with a conditional UPDATE (one worker holds its lease at a time; another
  takes it over when the lease lapses or, on the same host, when its holder died).
* Batches go in id order. Each batch runs in one transaction that locks the job row, checks
  the lease is still this worker's and the job was not cancelled, changes the messages,
  records what undo needs (BulkJobItem: the message and its previous folder) and moves the
  cursor: a crash loses at most the batch in flight, which the next claim does again.
* Undo is a job too: it walks the undone job's items and puts back what is still as the job
  left it (a message moved again since stays where the user put it).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from accounts.models import MailAccount
from webpop.lib import pagecache

from . import filing, folders, joblease, search, tabs, virtual
from .categories import Category
from .models import BulkJob, BulkJobItem, Folder, Message

log = logging.getLogger(__name__)

State = BulkJob.State
BATCH = 500
MAX_ATTEMPTS = 5  # claims of one job; a job that stops its worker this often fails
STALE_QUEUED = dt.timedelta(minutes=2)  # a queued job this old lost its task (or waits behind others: harmless)
FLAGS = {"read": ("seen", True), "unread": ("seen", False), "star": ("flagged", True), "unstar": ("flagged", False)}


class CriteriaError(ValueError):
    """The criteria name no folder, view or search of this user."""


def matching(owner_id: int, criteria: dict) -> QuerySet:
    """The owner's messages a list shows for ``criteria`` (all its pages), as mailbox/views.py lists them.

    ``criteria``: {"query": text} for a search, else {"view": slug} or {"folder": value};
    ``account`` (an id) narrows any of them to one of the owner's accounts; ``tab`` (a slug) the Inbox to one tab.
    """
    rows = Message.objects.filter(owner_id=owner_id).exclude(folder=Folder.PURGED)
    if criteria.get("account") is not None:
        if not MailAccount.objects.filter(id=int(criteria["account"]), owner_id=owner_id).exists():
            raise CriteriaError("unknown account")
        rows = rows.filter(account_id=int(criteria["account"]))
    query = (criteria.get("query") or "").strip()
    if query:
        parsed = search.parse(query)
        if not any(op == "in" for op, _value, _neg in parsed.filters):
            rows = rows.exclude(folder__in=[Folder.TRASH, Folder.SPAM])  # as the search page does
        try:
            return search.apply(rows, parsed)
        except search.SearchError as exc:
            raise CriteriaError(str(exc)) from None
    if criteria.get("view"):
        view = virtual.VIEWS.get(criteria["view"])
        if view is None:
            raise CriteriaError("unknown view")
        return rows.filter(view.condition)
    folder = criteria.get("folder") or ""
    if folder in (Folder.PURGED, "") or not (folder in Folder.values or folders.is_owned_slug(owner_id, folder)):
        raise CriteriaError("unknown folder")
    rows = rows.filter(folder=folder)
    if criteria.get("tab"):  # one Inbox tab: what its pages list
        category = Category.from_slug(str(criteria["tab"]))
        if category is None or folder != Folder.INBOX:
            raise CriteriaError("unknown tab")
        rows = rows.filter(tabs.condition(category))
    return rows


# --- Claiming ---------------------------------------------------------------------------------


def _lease_seconds() -> int:
    return settings.WEBPOP_BULK_LEASE_SECONDS


def claim(job_id: int, now: dt.datetime | None = None) -> str | None:
    """Take the job's lease with a conditional UPDATE; None when it is held, finished or used up."""
    return joblease.claim(
        BulkJob, job_id, lease_seconds=_lease_seconds(), max_attempts=MAX_ATTEMPTS, label="bulk job", now=now
    )


# --- Running ----------------------------------------------------------------------------------


def run(job_id: int, *, max_batches: int | None = None) -> str:
    """Run (or resume) one job if this worker wins its claim; returns the state it reached, or "skipped".

    ``max_batches``: stop after that many (tests use it to leave a job half done, as a crash would).
    """
    token = claim(job_id)
    if token is None:
        return "skipped"
    batches = 0
    while max_batches is None or batches < max_batches:
        state = _batch(job_id, token)
        if state != State.RUNNING:
            return state
        batches += 1
    return State.RUNNING


def _batch(job_id: int, token: str) -> str:
    """One batch in one transaction; returns the job's state after it (RUNNING: more to do)."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().filter(id=job_id, lease_token=token).first()
        if job is None or job.state != State.RUNNING:
            return job.state if job else "lost"  # cancelled, or another worker took it over
        try:
            seen, changed, last = _undo_batch(job) if job.action == "undo" else _action_batch(job)
        except CriteriaError as exc:  # the folder or account went away meanwhile
            return _finish(job, token, State.FAILED, str(exc))
        job.done += seen
        job.changed += changed
        if last is None:
            return _finish(job, token, State.DONE)
        # The row is locked with this token: the renewal cannot miss.
        joblease.renew(BulkJob, job_id, token, lease_seconds=_lease_seconds(), done=job.done, changed=job.changed,
                       cursor=last)  # fmt: skip
        if changed:
            pagecache.touch([job.owner_id])
        return State.RUNNING


def _finish(job: BulkJob, token: str, state: str, error: str = "") -> str:
    joblease.release(BulkJob, job.id, token, state, error=error, done=job.done, changed=job.changed)
    pagecache.touch([job.owner_id])  # the list page shows the job's state
    return state


def _action_batch(job: BulkJob) -> tuple[int, int, int | None]:
    """The next batch of matching messages: (gone through, changed, last id or None when none was left)."""
    rows = matching(job.owner_id, job.criteria).filter(id__gt=job.cursor, id__lte=job.last_id)
    batch = list(rows.order_by("id").values_list("id", "folder", "seen", "flagged")[:BATCH])
    if not batch:
        return 0, 0, None
    if job.action == "move":
        try:
            todo = filing.move(job.owner_id, [pk for pk, *_rest in batch], job.folder)  # {id: previous folder}
        except filing.ActionError as exc:  # the target folder was deleted meanwhile
            raise CriteriaError(str(exc)) from None
    else:
        field, value = FLAGS[job.action]
        todo = {pk: "" for pk, _folder, seen, flagged in batch if (seen if field == "seen" else flagged) != value}
        if todo:
            Message.objects.filter(owner_id=job.owner_id, id__in=list(todo)).update(**{field: value})
    # Committed with the change and the cursor: a batch is never done twice, so its items are new.
    BulkJobItem.objects.bulk_create(
        [BulkJobItem(job_id=job.id, message_id=pk, previous_folder=folder) for pk, folder in todo.items()]
    )
    return len(batch), len(todo), batch[-1][0]


def _undo_batch(job: BulkJob) -> tuple[int, int, int | None]:
    """The next batch of the undone job's items, put back: (gone through, restored, last item id or None)."""
    undone = job.undo_of
    items = list(
        BulkJobItem.objects.filter(job_id=undone.id, id__gt=job.cursor, id__lte=job.last_id)
        .order_by("id")
        .values_list("id", "message_id", "previous_folder")[:BATCH]
    )
    if not items:
        return 0, 0, None
    if undone.action == "move":
        # Only what is still where the job put it: a message moved again since stays where the user put it.
        still = set(
            Message.objects.filter(
                owner_id=job.owner_id, id__in=[m for _i, m, _f in items], folder=undone.folder
            ).values_list("id", flat=True)
        )
        restored = filing.restore(job.owner_id, {m: folder for _i, m, folder in items if m in still})
    else:
        field, value = FLAGS[undone.action]
        restored = Message.objects.filter(
            owner_id=job.owner_id, id__in=[m for _i, m, _f in items], **{field: value}
        ).update(**{field: not value})
    return len(items), restored, items[-1][0]


# --- The sweep ----------------------------------------------------------------------------------


def resume_stalled(now: dt.datetime | None = None) -> list[int]:
    """Jobs whose task was lost or whose worker stopped: ids to enqueue again; jobs stopped too often fail."""
    return joblease.stalled(
        BulkJob,
        max_attempts=MAX_ATTEMPTS,
        stale_queued=STALE_QUEUED,
        label="bulk job",
        failed={"error": "stopped"},
        on_failed=lambda job: pagecache.touch([job.owner_id]),  # the list page shows the job's state
        now=now,
    )
