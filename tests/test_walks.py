"""Host-wide jobs walk the data in bounded slices with their progress recorded (webpop/lib/walks.py).

The dashboard's storage totals (ops/storage.py) and the store's garbage collection
(mailbox/storage_gc.py): every statement they send to the mail tables is bounded (a range of
ids, a LIMIT, or a list of keys), a killed run goes on where it stopped, and the numbers are right.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mailbox import storage_gc, store
from mailbox.models import Message
from ops import stats, storage, tasks
from tests.factories import build_message, make_account, store_message
from webpop.lib import walks

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

MAIL_TABLES = ('"mailbox_message"', '"mailbox_attachment"')
ID_RANGE = re.compile(r'"mailbox_message"\."id" > \S+ AND "mailbox_message"\."id" <= ')


def _mail_statements(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if any(table in q["sql"] for table in MAIL_TABLES)]


def _bounded_by_ids_or_limit(sql: str) -> bool:
    return bool(ID_RANGE.search(sql)) or " LIMIT " in sql


def _stored(account, n: int, prefix: str, body: str = "hello") -> list[Message]:
    return [store_message(account, build_message(f"{prefix} {i}", body), f"{prefix}-{i}") for i in range(n)]


def test_storage_totals_are_counted_in_id_slices_each_statement_bounded(alice, bob, monkeypatch):
    monkeypatch.setattr(storage, "SLICE", 3)
    small = _stored(make_account(alice), 5, "a")
    big = _stored(make_account(bob), 4, "b", "x" * 3000)
    with CaptureQueriesContext(connection) as captured:
        result = tasks.count_storage()
    statements = _mail_statements(captured)
    assert len(statements) >= 4 and all(_bounded_by_ids_or_limit(sql) for sql in statements), statements
    assert result["slices"] == 4  # 9 messages, 3 per slice, then the look that finds no more
    assert [(r.username, r.messages, r.bytes) for r in stats.users_by_storage()] == [
        ("bob", 4, sum(m.size for m in big)),
        ("alice", 5, sum(m.size for m in small)),
    ]
    assert stats.total_storage()["messages"] == 9
    assert stats.total_storage()["bytes"] == sum(m.size for m in small + big)


def test_storage_totals_follow_a_change_at_the_next_count(alice, bob, monkeypatch):
    monkeypatch.setattr(storage, "SLICE", 2)
    alices, bobs = _stored(make_account(alice), 3, "a"), _stored(make_account(bob), 2, "b")
    storage.count(pause=0)
    before = stats.total_storage()
    assert before["messages"] == 5 and before["as_of"] is not None

    storage_gc.purge_messages(bobs)  # bob has nothing left
    added = _stored(alices[0].account, 1, "later", "y" * 5000)
    assert stats.total_storage()["messages"] == 5  # as counted, until the next count
    storage.count(pause=0)
    rows = {r.username: (r.messages, r.bytes) for r in stats.users_by_storage()}
    assert rows == {"alice": (4, sum(m.size for m in alices + added)), "bob": (0, 0)}
    assert stats.total_storage()["messages"] == 4


def test_a_count_killed_mid_pass_goes_on_from_its_cursor_and_counts_nothing_twice(alice, monkeypatch):
    monkeypatch.setattr(storage, "SLICE", 2)
    messages = _stored(make_account(alice), 5, "a")
    calls = 0

    def killed_at_the_third_slice(cursor: str) -> str | None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("worker killed")
        return storage.step(cursor)

    with pytest.raises(RuntimeError):
        walks.run(storage.WALK, killed_at_the_third_slice, pause=0)
    progress = walks.progress(storage.WALK)
    assert (progress.cursor, progress.slices) == (str(messages[3].id), 2)
    assert stats.total_storage() == {"messages": 0, "bytes": 0, "as_of": None}  # no pass complete yet

    storage.count(pause=0)
    progress = walks.progress(storage.WALK)
    assert (progress.cursor, progress.last_slices) == ("", 3)
    assert stats.total_storage()["messages"] == 5
    assert stats.total_storage()["bytes"] == sum(m.size for m in messages)


def test_the_dashboard_users_page_and_metrics_read_the_counted_totals_never_the_mail(staff_client, alice):
    _stored(make_account(alice), 2, "a")
    page = staff_client.get(reverse("ops:dashboard")).content.decode()
    assert "not counted yet" in page
    storage.count(pause=0)
    with CaptureQueriesContext(connection) as captured:
        for url in (reverse("ops:dashboard"), reverse("ops:users"), "/metrics"):
            assert staff_client.get(url).status_code == 200
    # The one look at the message table left is the spam queue's oldest entry (through the queue, LIMIT 1).
    statements = _mail_statements(captured)
    assert all(" LIMIT 1" in sql and "SUM(" not in sql and "COUNT(" not in sql for sql in statements), statements
    page = staff_client.get(reverse("ops:dashboard")).content.decode()
    assert re.search(r'id="storage-counted">counted \d+.minutes? ago', page)
    assert "webpop_stored_messages 2.0" in staff_client.get("/metrics").content.decode()


def test_the_beat_counts_storage_every_quarter_hour(settings):
    by_task = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert by_task["ops.tasks.count_storage"].total_seconds() == 15 * 60


# --- Garbage collection ---------------------------------------------------------------


def _aged(relpaths: list[str], root: Path) -> None:
    past = time.time() - 24 * 3600
    for relpath in relpaths:
        os.utime(root / relpath, (past, past))


def _orphans_in_shards(n: int) -> list[store.StoredFile]:
    """Unreferenced blobs in at least ``n`` different top-level shards."""
    orphans, shards, i = [], set(), 0
    while len(shards) < n:
        blob = store.write_blob(f"orphan {i}".encode())
        i += 1
        if blob.relpath.rsplit("/", 1)[0] not in shards:
            shards.add(blob.relpath.rsplit("/", 1)[0])
            orphans.append(blob)
    return orphans


def test_gc_walks_the_store_a_shard_at_a_time_and_a_killed_run_goes_on_at_the_next(settings, monkeypatch):
    root = Path(settings.WEBPOP_MAIL_DIR)
    orphans = _orphans_in_shards(3)
    _aged([o.relpath for o in orphans], root)
    shards = storage_gc._shards(store.mail_storage())
    real, calls = storage_gc._collect_shard, 0

    def killed_in_the_second_shard(*args):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("worker killed")
        return real(*args)

    monkeypatch.setattr(storage_gc, "_collect_shard", killed_in_the_second_shard)
    with pytest.raises(RuntimeError):
        storage_gc.collect_garbage(pause=0)
    assert walks.progress(storage_gc.WALK).cursor == shards[0]
    first = [o.relpath for o in orphans if o.relpath.startswith(shards[0] + "/")]
    assert first and not any((root / relpath).exists() for relpath in first)

    monkeypatch.setattr(storage_gc, "_collect_shard", real)
    report = storage_gc.collect_garbage(pause=0)
    assert sorted(path for path, _size in report.freed) == sorted(o.relpath for o in orphans if o.relpath not in first)
    progress = walks.progress(storage_gc.WALK)
    assert progress.cursor == "" and progress.last_slices == len(shards) + 1  # the pass: every shard, then tmp/


def test_gc_looks_up_references_in_statements_of_a_bounded_number_of_hashes(alice, settings):
    root = Path(settings.WEBPOP_MAIL_DIR)
    kept = _stored(make_account(alice), 4, "kept")
    orphans = _orphans_in_shards(2)
    _aged([m.raw_path for m in kept] + [o.relpath for o in orphans], root)
    with CaptureQueriesContext(connection) as captured:
        report = storage_gc.collect_garbage(pause=0)
    assert sorted(path for path, _size in report.freed) == sorted(o.relpath for o in orphans)
    statements = _mail_statements(captured)
    assert statements and all(" IN (" in sql or " LIMIT " in sql for sql in statements), statements
    assert all((root / m.raw_path).exists() for m in kept)
