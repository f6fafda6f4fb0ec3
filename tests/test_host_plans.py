"""Query plans on a host with many users (issue 21): every per-user page reads through an index
that starts with the owner (or their account), never a sequential scan of the message table.

Users of very different sizes share the tables, COPY-loaded once for the module
(bench/_web_data.py) and VACUUM ANALYZEd, so the planner sees a host's statistics: one large
mailbox and several small ones. Each hot query is taken from the real page (the SQL the view
runs) or the real function, and checked with EXPLAIN (FORMAT JSON).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bench._web_data import RARE_WORD, RawFile, build_rows, copy_rows
from mailbox import conversation, folders, listing, search
from mailbox.models import Folder, Message
from mailbox.owner_search_index import OLD_INDEX, OWNER_INDEX
from tests.conftest import require_postgresql
from tests.factories import make_account

# 26,000 rows: one big mailbox (15% of the table, as a host's largest is a small part of it), one
# medium and twenty small ones.
SIZES = [4_000, 2_000] + [1_000] * 20
BIG, SMALL = 0, 7


@pytest.fixture(scope="module")
def host(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        require_postgresql()
        from django.contrib.auth import get_user_model

        from accounts.models import MailAccount

        raw = [RawFile("00/00/missing", "0" * 64, 1000)]
        users = []
        for n, size in enumerate(SIZES):
            user = get_user_model().objects.create_user(f"host{n}", f"host{n}@example.org", "host-Password-1")
            account = make_account(user, username=f"host{n}-pop")
            copy_rows(build_rows(user.id, account.id, size, raw, seed=n, uidl_prefix=f"h{n}"))
            users.append((user, account))
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE mailbox_message")  # as autovacuum leaves a live host: index-only scans
        yield users
        for user, _account in users:
            Message.objects.filter(owner=user)._raw_delete(connection.alias)
            MailAccount.objects.filter(owner=user).delete()
            user.delete()


def plan_of(sql: str, params=None) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        return cursor.fetchone()[0][0]["Plan"]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def message_scans(plan: dict) -> list[tuple[str, str]]:
    """(node type, index name) of every node reading mailbox_message or one of its indexes."""
    scans = []
    for node in _nodes(plan):
        index = node.get("Index Name", "")
        if node.get("Relation Name") == "mailbox_message" or index.startswith(("msg_", "mailbox_message", "message_")):
            scans.append((node["Node Type"], index))
    return scans


# Indexes bounded by one user's rows: they lead with the owner or one of the owner's accounts. Besides
# them only the primary key (a row by id) and the partial index of rows not yet in the search index
# (a sync's backlog, empty once the indexer caught up) may be read.
OWNER_LEADING = ("msg_owner_", "msg_account_", "mailbox_message_owner_id_", "mailbox_message_account_id_", OWNER_INDEX)
# msg_snoozed_due_idx holds only the host's snoozed rows (the wake-up sweep's index); with none snoozed
# the planner may read it for a user's Snoozed count as cheaply as msg_owner_snoozed_idx.
ALSO_BOUNDED = {"mailbox_message_pkey", "message_account_uidl_uniq", "mailbox_message_unindexed", "msg_snoozed_due_idx"}


def assert_bounded(plan: dict, what: str) -> set[str]:
    """No Seq Scan of the message table and only per-user indexes; returns the indexes read."""
    scans = message_scans(plan)
    assert scans, (what, plan)
    assert not [s for s in scans if s[0] == "Seq Scan"], (what, scans)
    indexes = {index for _type, index in scans if index}
    assert all(i.startswith(OWNER_LEADING) or i in ALSO_BOUNDED for i in indexes), (what, indexes)
    return indexes


def page_queries(client, url: str, query: dict | None = None) -> list[str]:
    """The SQL of every query a page runs that reads the message table."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, query or {})
    assert response.status_code == 200, url
    return [
        q["sql"] for q in captured.captured_queries if '"mailbox_message"' in q["sql"] or "mailbox_message " in q["sql"]
    ]


def _client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_owner_search_index_replaced_the_old_one(host):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'mailbox_message'")
        indexes = dict(cursor.fetchall())
    assert "(owner_id, search_document)" in indexes[OWNER_INDEX]
    assert OLD_INDEX not in indexes


@pytest.mark.django_db
@pytest.mark.parametrize("who", [BIG, SMALL], ids=["big", "small"])
@pytest.mark.parametrize("word", ["invoice", RARE_WORD])
def test_search_reads_only_the_owners_postings(host, who, word):
    """The full-text condition with the owner in one GIN scan, whatever the word's frequency."""
    user, _account = host[who]
    rows = search.full_text(Message.objects.filter(owner=user), [word])
    sql, params = rows.values("id").query.sql_with_params()
    indexes = assert_bounded(plan_of(sql, params), word)
    if who == BIG and word == RARE_WORD:  # a rare word in a big mailbox: the owner's postings, inside the GIN
        assert OWNER_INDEX in indexes, indexes
    # Elsewhere the planner may read the owner's rows and test each instead; either is bounded by them.
    # And the results are that owner's alone.
    assert rows.exclude(owner=user).count() == 0
    assert rows.count() > 0


@pytest.mark.django_db
@pytest.mark.parametrize("who", [BIG, SMALL], ids=["big", "small"])
@pytest.mark.parametrize("query", ["invoice", RARE_WORD, f"{RARE_WORD} is:unread", "from:anna"])
def test_search_pages_never_scan_the_message_table(host, who, query):
    user, _account = host[who]
    sqls = page_queries(_client(user), reverse("mailbox:inbox"), {"q": query})
    used = set()
    for sql in sqls:
        used |= assert_bounded(plan_of(sql), query)
    assert used


# Each hot per-user query with the indexes that may serve it: all lead with the owner or the account.
LIST_INDEXES = {"msg_owner_inbox_order_idx", "msg_owner_tab_order_idx"}


@pytest.mark.django_db
@pytest.mark.parametrize("who", [BIG, SMALL], ids=["big", "small"])
def test_inbox_first_and_deep_page(host, who):
    user, _account = host[who]
    client = _client(user)
    with CaptureQueriesContext(connection):
        first = client.get(reverse("mailbox:inbox"))
    for sql in page_queries(client, reverse("mailbox:inbox")):
        assert_bounded(plan_of(sql), "inbox")
    rows = Message.objects.filter(owner=user, folder=Folder.INBOX).order_by("-date", "-id")
    deep = rows[rows.count() * 9 // 10]
    sqls = page_queries(client, reverse("mailbox:inbox"), {"before": listing.encode(deep)})
    lists = [sql for sql in sqls if '"mailbox_message"."snippet"' in sql]
    assert len(lists) == 1
    assert assert_bounded(plan_of(lists[0]), "deep page") & LIST_INDEXES
    for sql in sqls:
        assert_bounded(plan_of(sql), "deep page")
    assert first.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("who", [BIG, SMALL], ids=["big", "small"])
def test_folder_page(host, who):
    user, _account = host[who]
    sqls = page_queries(_client(user), reverse("mailbox:folder", args=["archive"]))
    lists = [sql for sql in sqls if '"mailbox_message"."snippet"' in sql]
    assert len(lists) == 1
    assert "msg_owner_folder_date_idx" in assert_bounded(plan_of(lists[0]), "archive")
    for sql in sqls:
        assert_bounded(plan_of(sql), "archive")


@pytest.mark.django_db
@pytest.mark.parametrize("who", [BIG, SMALL], ids=["big", "small"])
def test_unread_counts(host, who):
    user, _account = host[who]
    sqls = page_queries(_client(user), reverse("mailbox:counts"))
    assert sqls
    for sql in sqls:
        assert_bounded(plan_of(sql), "counts")
    with CaptureQueriesContext(connection) as captured:
        folders.unread_counts(user.id, [Folder.INBOX, Folder.SPAM])
    (sql,) = [q["sql"] for q in captured.captured_queries]
    assert assert_bounded(plan_of(sql), "unread counts") <= {"msg_owner_unread_idx", "msg_owner_tab_unread_idx"}


@pytest.mark.django_db
@pytest.mark.parametrize("who", [BIG, SMALL], ids=["big", "small"])
def test_conversation_lookup(host, who):
    user, _account = host[who]
    message = Message.objects.filter(owner=user).order_by("-date").first()
    sql, params = conversation.thread_rows(user.id, message.thread_id).order_by("date").query.sql_with_params()
    assert "msg_owner_thread_idx" in assert_bounded(plan_of(sql, params), "thread")


@pytest.mark.django_db
@pytest.mark.parametrize("who", [BIG, SMALL], ids=["big", "small"])
def test_sync_known_uidls_and_quota(host, who):
    """A sync whose listing changed otherwise: every UIDL it already has, and the storage the owner uses."""
    from accounts.models import Profile
    from mailbox.sync import diff, session

    user, account = host[who]
    Profile.objects.update_or_create(user=user, defaults={"storage_quota_bytes": 10**12})
    with CaptureQueriesContext(connection) as captured:
        known = diff._known_uidls(account)
        session._quota_left(account)
    assert len(known) == SIZES[who]
    sqls = [q["sql"] for q in captured.captured_queries if '"mailbox_message"' in q["sql"]]
    assert len(sqls) == 2, sqls
    uidls, quota = (assert_bounded(plan_of(sql), sql[:60]) for sql in sqls)
    assert uidls and all(
        i.startswith(("message_account_uidl_uniq", "msg_account_", "mailbox_message_account_id_")) for i in uidls
    )
    assert quota == {"msg_owner_size_idx"}, quota  # the sizes from the index, not every row of the user


@pytest.mark.django_db
@pytest.mark.parametrize("who", [BIG, SMALL], ids=["big", "small"])
def test_new_mail_behind_the_settled_listing_is_looked_up_by_uidl(host, who):
    """A sync with new mail reads only the UIDLs listed after the settled prefix, through the unique index."""
    from mailbox.sync import diff

    _user, account = host[who]
    stored = list(Message.objects.filter(account=account).values_list("uidl", flat=True)[:3])
    with CaptureQueriesContext(connection) as captured:
        known = diff._known_among(account, [*stored, "not-stored-yet"])
    assert known == set(stored)
    (sql,) = [q["sql"] for q in captured.captured_queries if '"mailbox_message"' in q["sql"]]
    scans = message_scans(plan_of(sql))
    assert {index for _type, index in scans if index} == {"message_account_uidl_uniq"}, scans
    assert not [s for s in scans if s[0] == "Seq Scan"], scans


@pytest.mark.django_db
@pytest.mark.parametrize("who", [BIG, SMALL], ids=["big", "small"])
def test_a_no_change_poll_reads_its_account_by_key(host, who):
    """The check's one query per batch: the accounts by primary key, mirror deletions pending by index."""
    from mailbox.sync import check

    _user, account = host[who]
    with CaptureQueriesContext(connection) as captured:
        check.plan([account.id])
    (sql,) = [q["sql"] for q in captured.captured_queries]
    scans = message_scans(plan_of(sql))
    assert scans and {index for _type, index in scans} <= {"msg_account_server_state_idx"}, scans
    assert not [s for s in scans if s[0] == "Seq Scan"], scans


@pytest.mark.django_db
def test_trash_expiry_reads_only_trash_rows(host):
    """The sweep over every user finds whose trash is due through the trash rows' own index."""
    from django.utils import timezone

    cutoff = timezone.now()
    owners = Message.objects.filter(folder=Folder.TRASH, deleted_at__lt=cutoff).values_list("owner_id").distinct()
    sql, params = owners.query.sql_with_params()
    scans = message_scans(plan_of(sql, params))
    assert scans and all(index == "msg_trash_deleted_idx" for _type, index in scans), scans
