"""'Select all N': an action on a whole folder, view or search, run in the background in batches.

Thousands of real rows in PostgreSQL: the web request records a job and returns; the job
(mailbox/bulkjobs.py, run here as a worker would) changes every message, undo puts each back
where it was, and a job a worker dropped halfway is found by the sweep and finished.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mailbox import actions, bulkjobs, folders
from mailbox import tasks as mailbox_tasks
from mailbox.models import BulkJob, BulkJobItem, Folder, Message
from tests.factories import make_account

pytestmark = pytest.mark.django_db

MANY = 2600  # a few batches of bulkjobs.BATCH


def bulk_messages(account, count: int, prefix: str = "u", **fields) -> list[Message]:
    now = timezone.now()
    rows = [
        Message(
            owner_id=account.owner_id, account=account, uidl=f"{prefix}{i}", sha256="0" * 64, size=10,
            raw_path="raw/x", subject=f"Subject {i}", from_email=f"s{i}@example.net",
            date=now - dt.timedelta(minutes=i), **fields,
        )
        for i in range(count)
    ]  # fmt: skip
    return Message.objects.bulk_create(rows)


def _post_all(client, action: str, criteria: str, **extra):
    return client.post(
        reverse("mailbox:bulk"),
        {"action": action, "scope": "all", "criteria": criteria, "next": reverse("mailbox:inbox"), **extra},
    )


def test_archiving_a_whole_folder_runs_in_the_background_and_undo_restores_it(
    alice, alice_client, bulk_enqueued, django_capture_on_commit_callbacks
):
    account = make_account(alice)
    inbox = bulk_messages(account, MANY)
    already = bulk_messages(account, 5, "a", folder=Folder.ARCHIVE)
    trashed = bulk_messages(account, 3, "t", folder=Folder.TRASH)

    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as queries:
        response = _post_all(alice_client, "archive", "folder=inbox")
    assert response.status_code == 302
    job = BulkJob.objects.get()
    assert bulk_enqueued == [job.id]
    assert (job.action, job.folder, job.criteria, job.total, job.state) == (
        "move",
        "archive",
        {"folder": "inbox"},
        MANY,
        "queued",
    )
    assert Message.objects.filter(folder=Folder.INBOX).count() == MANY  # the request changed no message
    assert not any("UPDATE" in q["sql"] and "mailbox_message" in q["sql"] for q in queries.captured_queries)

    page = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert f'data-status-url="{reverse("mailbox:bulk_status", args=[job.id])}"' in page
    assert "Working on it: 0 of 2,600 messages…" in page

    assert bulkjobs.run(job.id) == "done"
    job.refresh_from_db()
    assert (job.state, job.done, job.changed) == ("done", MANY, MANY)
    assert Message.objects.filter(folder=Folder.INBOX).count() == 0
    assert Message.objects.filter(folder=Folder.ARCHIVE).count() == MANY + len(already)
    assert Message.objects.filter(folder=Folder.TRASH).count() == len(trashed)  # other folders untouched
    assert BulkJobItem.objects.filter(job=job).count() == MANY
    status = alice_client.get(reverse("mailbox:bulk_status", args=[job.id])).json()
    assert status == {
        "state": "done",
        "active": False,
        "done": MANY,
        "total": MANY,
        "text": "2,600 messages moved to Archive.",
    }
    page = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert "2,600 messages moved to Archive." in page and 'action="/messages/undo/"' in page

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("mailbox:undo"), {"next": reverse("mailbox:inbox")})
    undo = BulkJob.objects.get(undo_of=job)
    assert bulk_enqueued == [job.id, undo.id] and undo.total == MANY
    assert bulkjobs.run(undo.id) == "done"
    assert Message.objects.filter(folder=Folder.INBOX).count() == MANY
    assert set(Message.objects.filter(folder=Folder.ARCHIVE).values_list("id", flat=True)) == {m.id for m in already}
    assert "Undone: 2,600 restored." in alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert {m.id for m in inbox} == set(Message.objects.filter(folder=Folder.INBOX).values_list("id", flat=True))


def test_undo_leaves_what_was_moved_again_where_the_user_put_it(alice):
    account = make_account(alice)
    bulk_messages(account, 30)
    job = actions.start_bulk_job(alice.id, {"folder": "inbox"}, "move", Folder.TRASH)
    bulkjobs.run(job.id)
    elsewhere = folders.create(alice.id, "Keep")
    moved_again = list(Message.objects.filter(owner=alice).order_by("id").values_list("id", flat=True)[:4])
    actions.move(alice.id, moved_again, elsewhere.slug)
    undo = actions.undo_bulk_job(alice.id, job.id)
    bulkjobs.run(undo.id)
    assert set(Message.objects.filter(folder=elsewhere.slug).values_list("id", flat=True)) == set(moved_again)
    assert Message.objects.filter(folder=Folder.INBOX).count() == 26
    assert Message.objects.filter(folder=Folder.INBOX, deleted_at__isnull=False).count() == 0
    assert actions.undo_bulk_job(alice.id, job.id) is None  # undone once


def test_flags_on_a_search_change_only_what_matches_and_undo_changes_back_only_those(alice):
    account = make_account(alice)
    bulk_messages(account, 40, seen=False)
    Message.objects.filter(owner=alice, subject__in=["Subject 1", "Subject 2"]).update(seen=True)
    job = actions.start_bulk_job(alice.id, {"query": "subject:Subject"}, "read")
    assert job.total == 40
    bulkjobs.run(job.id)
    job.refresh_from_db()
    assert (job.done, job.changed) == (40, 38)
    assert not Message.objects.filter(owner=alice, seen=False).exists()
    bulkjobs.run(actions.undo_bulk_job(alice.id, job.id).id)
    assert set(Message.objects.filter(owner=alice, seen=True).values_list("subject", flat=True)) == {
        "Subject 1",
        "Subject 2",
    }


def test_mail_arriving_while_a_job_runs_is_left_alone(alice):
    account = make_account(alice)
    bulk_messages(account, 20)
    job = actions.start_bulk_job(alice.id, {"folder": "inbox"}, "move", Folder.ARCHIVE)
    newer = Message.objects.create(
        owner=alice, account=account, uidl="late", sha256="0" * 64, size=1, raw_path="raw/x", date=timezone.now()
    )
    bulkjobs.run(job.id)
    assert list(Message.objects.filter(folder=Folder.INBOX).values_list("id", flat=True)) == [newer.id]


def test_a_job_dropped_halfway_is_resumed_by_the_sweep_and_changes_nothing_twice(alice, bulk_enqueued, settings):
    from webpop.celery import app

    sweep = settings.CELERY_BEAT_SCHEDULE["resume-bulk-jobs"]
    assert sweep["task"] in app.tasks and sweep["schedule"] <= dt.timedelta(minutes=1)
    account = make_account(alice)
    bulk_messages(account, MANY)
    job = actions.start_bulk_job(alice.id, {"folder": "inbox"}, "move", Folder.SPAM)
    # A worker takes it, commits two batches and dies holding the lease.
    assert bulkjobs.run(job.id, max_batches=2) == "running"
    job.refresh_from_db()
    assert (job.state, job.done) == ("running", 2 * bulkjobs.BATCH)
    assert bulkjobs.run(job.id) == "skipped"  # the lease is held: nobody else runs it meanwhile
    assert app.tasks[sweep["task"]].run() == 0 and bulk_enqueued == []  # not stale yet

    BulkJob.objects.filter(id=job.id).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    assert app.tasks[sweep["task"]].run() == 1 and bulk_enqueued == [job.id]
    assert mailbox_tasks.run_bulk_job(job.id) == "done"
    job.refresh_from_db()
    assert (job.state, job.done, job.changed, job.attempts) == ("done", MANY, MANY, 2)
    assert Message.objects.filter(folder=Folder.SPAM).count() == MANY
    assert BulkJobItem.objects.filter(job=job).count() == MANY  # one item per message: nothing twice


def test_a_queued_job_whose_task_was_lost_is_sent_again(alice, bulk_enqueued):
    bulk_messages(make_account(alice), 10)
    job = actions.start_bulk_job(alice.id, {"folder": "inbox"}, "star")
    assert bulkjobs.resume_stalled() == []
    later = timezone.now() + bulkjobs.STALE_QUEUED + dt.timedelta(seconds=1)
    assert bulkjobs.resume_stalled(now=later) == [job.id]
    bulkjobs.run(job.id)
    assert Message.objects.filter(owner=alice, flagged=True).count() == 10


def test_undo_while_running_stops_the_job_and_puts_back_what_it_did(alice):
    account = make_account(alice)
    bulk_messages(account, 1200)
    job = actions.start_bulk_job(alice.id, {"folder": "inbox"}, "move", Folder.ARCHIVE)
    bulkjobs.run(job.id, max_batches=1)
    undo = actions.undo_bulk_job(alice.id, job.id)
    assert bulkjobs.run(job.id) == "skipped"  # cancelled: no further batch
    job.refresh_from_db()
    assert job.state == "cancelled" and undo.total == bulkjobs.BATCH
    bulkjobs.run(undo.id)
    assert Message.objects.filter(folder=Folder.INBOX).count() == 1200


def test_the_count_names_the_list_and_refuses_what_is_not_the_users(alice, bob, alice_client, bob_client):
    account = make_account(alice)
    bulk_messages(account, 1234)
    data = alice_client.get(reverse("mailbox:bulk_count"), {"folder": "inbox"}).json()
    assert data == {
        "count": 1234,
        "offer": "Select all 1,234 messages in Inbox",
        "chosen": "All 1,234 messages in Inbox are selected.",
    }
    data = alice_client.get(reverse("mailbox:bulk_count"), {"q": "subject:Subject", "account": account.id}).json()
    assert data["offer"] == "Select all 1,234 messages matching this search"
    assert alice_client.get(reverse("mailbox:bulk_count"), {"view": "unread"}).json()["count"] == 1234
    assert bob_client.get(reverse("mailbox:bulk_count"), {"folder": "inbox", "account": account.id}).status_code == 404
    assert bob_client.get(reverse("mailbox:bulk_count"), {"folder": "inbox"}).json()["count"] == 0
    job = actions.start_bulk_job(alice.id, {"folder": "inbox"}, "read")
    assert bob_client.get(reverse("mailbox:bulk_status", args=[job.id])).status_code == 404
    assert actions.undo_bulk_job(bob.id, job.id) is None


def test_a_user_has_a_few_jobs_at_a_time_and_the_request_says_so(alice, alice_client):
    bulk_messages(make_account(alice), 5)
    for _ in range(actions.MAX_ACTIVE_BULK_JOBS):
        actions.start_bulk_job(alice.id, {"folder": "inbox"}, "read")
    response = _post_all(alice_client, "unread", "folder=inbox")
    assert BulkJob.objects.count() == actions.MAX_ACTIVE_BULK_JOBS
    assert "Wait until your other actions on whole folders are done." in json.dumps(
        [str(m) for m in response.wsgi_request._messages]
    )


def test_deleting_for_good_is_not_offered_for_a_whole_folder(alice, alice_client):
    bulk_messages(make_account(alice), 5, folder=Folder.TRASH)
    _post_all(alice_client, "forever", "folder=trash")
    assert not BulkJob.objects.exists() and Message.objects.filter(folder=Folder.TRASH).count() == 5


def test_snoozing_a_whole_folder_is_refused_rather_than_done_to_the_page_only(alice, alice_client):
    bulk_messages(make_account(alice), 60)
    response = alice_client.post(
        reverse("mailbox:snooze"),
        {"ids": [m.id for m in Message.objects.all()[:50]], "scope": "all", "criteria": "folder=inbox", "until": "x"},
    )
    assert response.status_code == 302
    assert not Message.objects.filter(folder=Folder.SNOOZED).exists()
