"""Keyset pagination and search at scale: 100,000 messages on PostgreSQL (issue 7).

The rows are bulk-created once for the module with COPY (bench/_web_data.py, the same
generator bench/web.py uses) and the module's tests only read them. The walk through the
pages follows the cursors the pages themselves hand out, as the browser does, and compares
with one ORDER BY over the whole folder; every page costs the same number of queries
however deep it is.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bench._web_data import RARE_EVERY, RARE_WORD, RawFile, build_rows, copy_rows
from mailbox import listing, search
from mailbox.models import INBOX_ORDER, Folder, Message
from tests.conftest import require_postgresql
from tests.factories import make_account

N = 100_000
PAGE = listing.PAGE_SIZE
MAX_QUERIES = 12  # a list page's budget; the walk below also checks it is the same on every page


class QueryCounts:
    """Queries per request, to check a deep page costs exactly what the first page costs."""

    def __init__(self):
        self.counts: list[int] = []

    def get(self, client, *args, **kwargs):
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            response = client.get(*args, **kwargs)
        self.counts.append(len(queries))
        return response


@pytest.fixture(scope="module")
def big(django_db_setup, django_db_blocker):
    """alice's 100,000 messages, created once; removed after the module."""
    with django_db_blocker.unblock():
        require_postgresql()
        from django.contrib.auth import get_user_model

        from accounts.models import MailAccount

        user = get_user_model().objects.create_user("scale", "scale@example.org", "scale-Password-1")
        account = make_account(user, username="scale-pop")
        # No raw files: these tests only list and search (the message page is bench/web.py's).
        copy_rows(build_rows(user.id, account.id, N, [RawFile("00/00/missing", "0" * 64, 1000)]))
        inbox_ids = list(
            Message.objects.filter(owner=user, folder=Folder.INBOX)
            .order_by("-date", "-id")
            .values_list("id", flat=True)
        )
        yield user, account, inbox_ids
        # The rows have no attachments, references or aliases: a plain DELETE is enough and fast.
        Message.objects.filter(owner=user)._raw_delete(connection.alias)
        MailAccount.objects.filter(owner=user).delete()
        user.delete()


def _client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def _ids(response) -> list[int]:
    return [row.id for row in response.context["page"].rows]


@pytest.mark.django_db
def test_the_rows_are_there(big):
    user, _account, inbox_ids = big
    assert Message.objects.filter(owner=user).count() == N
    assert Message.objects.filter(owner=user, search_document__isnull=True).count() == 0  # indexed
    assert 65_000 < len(inbox_ids) < 75_000
    # Ties on the date (every 50th pair shares one) exist, so the id tie-break matters.
    dates = Message.objects.filter(owner=user).values("date").distinct().count()
    assert dates < N


@pytest.mark.django_db
def test_walking_pages_by_cursor_first_tenth_and_last(big, django_assert_max_num_queries):
    user, _account, inbox_ids = big
    client = _client(user)
    counted = QueryCounts()
    seen: list[int] = []
    with django_assert_max_num_queries(MAX_QUERIES):
        response = counted.get(client, reverse("mailbox:inbox"))
    assert response.status_code == 200
    assert _ids(response) == inbox_ids[:PAGE]
    seen += _ids(response)
    # Pages 2..10 through the "older" cursors the pages give out: no gaps, no duplicates.
    for number in range(2, 11):
        cursor = response.context["page"].older
        with django_assert_max_num_queries(MAX_QUERIES):
            response = counted.get(client, reverse("mailbox:inbox"), {"before": cursor})
        assert response.status_code == 200
        assert _ids(response) == inbox_ids[(number - 1) * PAGE : number * PAGE], f"page {number}"
        seen += _ids(response)
    assert len(seen) == len(set(seen)) == 10 * PAGE
    # And back one page with the "newer" cursor.
    with django_assert_max_num_queries(MAX_QUERIES):
        back = counted.get(client, reverse("mailbox:inbox"), {"after": response.context["page"].newer})
    assert _ids(back) == inbox_ids[8 * PAGE : 9 * PAGE]

    # The last page, reached with the cursor of the row just before it: same query count.
    last_start = (len(inbox_ids) - 1) // PAGE * PAGE
    before_last = Message.objects.get(id=inbox_ids[last_start - 1])
    with django_assert_max_num_queries(MAX_QUERIES):
        response = counted.get(client, reverse("mailbox:inbox"), {"before": listing.encode(before_last)})
    assert _ids(response) == inbox_ids[last_start:]
    # However deep: pages 2..10, the way back and the last page all cost the same (page 1 may differ).
    assert len(set(counted.counts[1:])) == 1, counted.counts
    assert response.context["page"].older is None
    assert response.context["page"].newer is not None


@pytest.mark.django_db
def test_keyset_walk_of_the_whole_folder_at_the_listing_level(big, django_assert_num_queries):
    """Every inbox row exactly once, in order, one query per page (listing.page directly)."""
    user, _account, inbox_ids = big
    rows = Message.objects.filter(owner=user, folder=Folder.INBOX).only("id", "date")
    walked: list[int] = []
    cursor = None
    pages = 0
    while True:
        with django_assert_num_queries(1):
            page = listing.page(rows, before=cursor, size=1000)
        walked += [row.id for row in page.rows]
        pages += 1
        if page.older is None:
            break
        cursor = page.older
    assert walked == inbox_ids
    assert pages == -(-len(inbox_ids) // 1000)


@pytest.mark.django_db
def test_deep_page_uses_the_index_not_offset(big):
    user, _account, inbox_ids = big
    deep = Message.objects.get(id=inbox_ids[60_000])
    rows = Message.objects.filter(owner=user, folder=Folder.INBOX)
    date, pk = listing.decode(listing.encode(deep))
    # The query listing.page runs for ?before=<cursor>.
    queryset = rows.order_by("-date", "-id").filter(Q(date__lt=date) | Q(date=date, id__lt=pk))[: PAGE + 1]
    plan = queryset.explain()
    assert "msg_owner_folder_date_idx" in plan, plan
    assert "OFFSET" not in str(queryset.query).upper()


@pytest.mark.django_db
def test_search_with_from_and_a_free_word(big, django_assert_max_num_queries):
    user, _account, _inbox_ids = big
    client = _client(user)
    # The expected rows, computed without the full-text index: a sender and a subject word.
    sender = Message.objects.filter(owner=user).exclude(folder__in=[Folder.TRASH, Folder.SPAM]).first()
    address = sender.from_email
    expected = list(
        Message.objects.filter(owner=user, from_email=address, subject__icontains="invoice")
        .exclude(folder__in=[Folder.TRASH, Folder.SPAM])
        .order_by("-date", "-id")
        .values_list("id", flat=True)
    )
    assert expected, "the generator gives every sender some invoices"
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(reverse("mailbox:inbox"), {"q": f"from:{address} invoice"})
    assert response.status_code == 200
    got = _ids(response)
    assert got == expected[:PAGE]
    if len(expected) > PAGE:  # the search pages by cursor too
        with django_assert_max_num_queries(MAX_QUERIES):
            more = client.get(
                reverse("mailbox:inbox"), {"q": f"from:{address} invoice", "before": response.context["page"].older}
            )
        assert _ids(more) == expected[PAGE : 2 * PAGE]


@pytest.mark.django_db
def test_search_for_a_rare_body_word_finds_exactly_those_rows(big, django_assert_max_num_queries):
    user, _account, _inbox_ids = big
    expected = set(
        Message.objects.filter(owner=user, search_text__contains=RARE_WORD)
        .exclude(folder__in=[Folder.TRASH, Folder.SPAM])
        .values_list("id", flat=True)
    )
    assert 80 <= len(expected) <= -(-N // RARE_EVERY)
    rows = Message.objects.filter(owner=user).exclude(folder__in=[Folder.TRASH, Folder.SPAM])
    found: list[int] = []
    cursor = None
    while True:
        with django_assert_max_num_queries(1):
            page = listing.page(search.apply(rows, search.parse(RARE_WORD)), before=cursor)
        found += [row.id for row in page.rows]
        if page.older is None:
            break
        cursor = page.older
    assert len(found) == len(set(found))
    assert set(found) == expected
    client = _client(user)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(reverse("mailbox:inbox"), {"q": RARE_WORD})
    assert _ids(response) == found[:PAGE]


@pytest.mark.django_db
def test_search_queries_read_indexes_not_the_whole_table(big):
    """Each query of a word search's page (the window's bound, the window, the whole search) uses an index.

    How fast they are is measured in bench/web.py; this checks the plans that speed rests on.
    (``from:`` and the other operators match substrings: with one user owning every row, as
    here, reading the table is the right plan for them.)
    """
    user, _account, _inbox_ids = big
    client = _client(user)
    for query in ("invoice", "garden concert", RARE_WORD):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("mailbox:inbox"), {"q": query}).status_code == 200
        searches = [q["sql"] for q in queries.captured_queries if '"mailbox_message"."date"' in q["sql"]]
        assert searches, query
        for sql in searches:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN " + sql)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan on mailbox_message" not in plan, (query, plan)


# --- Virtual views, the Inbox's order and the snooze sweep (mailbox/virtual.py) -------------------------

VIEW_INDEXES = {
    "starred": "msg_owner_starred_idx",
    "unread": "msg_owner_unread_date_idx",
    "all": "msg_owner_all_mail_idx",
    # Both snoozed indexes hold only snoozed rows, which people have few of: either bounds the read. With one
    # user holding nearly every row here, the planner cannot tell the owner's few from the host's many.
    "snoozed": ("msg_owner_snoozed_idx", "msg_snoozed_due_idx"),
}


def _explain(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def _list_plans(client, url: str, query: dict) -> tuple[object, list[str]]:
    """The response and the plan of the page's list query (the one reading the listed columns)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, query)
    assert response.status_code == 200, url
    lists = [q["sql"] for q in queries.captured_queries if '"mailbox_message"."snippet"' in q["sql"]]
    assert len(lists) == 1, lists
    return response, [_explain(sql) for sql in lists]


def _snooze_some(user, n: int) -> list[int]:
    """Snooze ``n`` of the newest inbox messages, each until its own time (rolled back with the test)."""
    from django.utils import timezone

    from mailbox import actions

    ids = list(
        Message.objects.filter(owner=user, folder=Folder.INBOX)
        .order_by("-date", "-id")
        .values_list("id", flat=True)[:n]
    )
    start = timezone.now() + dt.timedelta(days=1)
    for i, pk in enumerate(ids):
        actions.snooze(user.id, [pk], start + dt.timedelta(minutes=i // 2))
    return ids


def _others_snoozed(user, n: int) -> None:
    """On a shared host most snoozed rows are other people's: hand ``n`` older inbox rows to another user, snoozed."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    other = get_user_model().objects.create_user("someone-else")
    ids = list(
        Message.objects.filter(owner=user, folder=Folder.INBOX).order_by("date", "id").values_list("id", flat=True)[:n]
    )
    later = timezone.now() + dt.timedelta(days=3)
    Message.objects.filter(id__in=ids).update(owner=other, folder=Folder.SNOOZED, snoozed_until=later)


@pytest.mark.django_db
@pytest.mark.parametrize("grouping", ["messages", "conversations"])
@pytest.mark.parametrize("slug", list(VIEW_INDEXES))
def test_each_views_pages_read_its_own_index(big, slug, grouping, django_assert_max_num_queries):
    user, _account, _inbox_ids = big
    if slug == "snoozed":
        _snooze_some(user, 120)
        _others_snoozed(user, 3000)
        with connection.cursor() as cursor:  # the planner's picture of the snoozed rows, whatever ran before
            cursor.execute("ANALYZE mailbox_message")
    client = _client(user)
    url = reverse("mailbox:view", args=[slug])
    with django_assert_max_num_queries(MAX_QUERIES):
        first, plans = _list_plans(client, url, {"view": grouping})
    deep_cursor = first.context["page"].older
    assert deep_cursor, "the view has more than one page"
    _second, deeper = _list_plans(client, url, {"view": grouping, "before": deep_cursor})
    indexes = VIEW_INDEXES[slug] if isinstance(VIEW_INDEXES[slug], tuple) else (VIEW_INDEXES[slug],)
    for plan in plans + deeper:
        assert any(index in plan for index in indexes), plan
        assert "Seq Scan on mailbox_message" not in plan, plan
        if slug != "snoozed":  # (an incremental sort of the few snoozed rows, at most)
            assert "Sort" not in plan.split("\n")[1], plan  # read in the index's order, not sorted afterwards
        # Grouped, the rest of each conversation is found by its thread (or, snoozed, among the few snoozed).
        if grouping == "conversations" and slug != "snoozed":
            assert "msg_owner_thread_idx" in plan, plan


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "index"),
    [
        ({}, "msg_owner_inbox_order_idx"),
        ({"view": "messages"}, "msg_owner_inbox_order_idx"),
        # The big user has this one account: the owner's index, filtered by account, reads the same rows.
        ("account", "msg_account_inbox_order_idx|msg_owner_inbox_order_idx"),
    ],
    ids=["conversations", "messages", "one account"],
)
def test_the_inbox_order_with_mail_back_from_snooze_reads_its_index(big, query, index):
    from mailbox import actions

    user, account, _inbox_ids = big
    woken = _snooze_some(user, 30)
    actions.wake_all_due(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    client = _client(user)
    query = {"account": account.id} if query == "account" else query
    response, plans = _list_plans(client, reverse("mailbox:inbox"), query)
    for plan in plans:
        assert any(name in plan for name in index.split("|")), plan
        assert "Seq Scan on mailbox_message" not in plan, plan
        if query.get("view") != "messages":  # grouped: the rest of each conversation, found by its thread
            assert "msg_owner_thread_idx" in plan, plan
    # Woken mail on top (the latest to come back first), then the rest by date; each row is its own
    # conversation, so every variant lists the same rows.
    expected = list(
        Message.objects.filter(owner=user, folder=Folder.INBOX)
        .order_by(INBOX_ORDER.desc(), "-id")
        .values_list("id", flat=True)[: 2 * PAGE]
    )
    assert set(expected[:30]) == set(woken)
    older = client.get(reverse("mailbox:inbox"), {**query, "before": response.context["page"].older})
    assert _ids(response) + _ids(older) == expected


@pytest.mark.django_db
def test_the_snooze_sweep_reads_its_index(big):
    """The sweep runs for every user on every beat tick: it reads the due rows from their index, however
    many are snoozed (and the planner knows how many: the rows are analysed, in this test's transaction)."""
    from django.utils import timezone

    from mailbox import actions

    _user, _account, inbox_ids = big
    later = timezone.now() + dt.timedelta(days=1)
    Message.objects.filter(id__in=inbox_ids[:3000]).update(folder=Folder.SNOOZED, snoozed_until=later)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE mailbox_message")
    with CaptureQueriesContext(connection) as queries:
        assert actions.wake_due(now=timezone.now()) == 0  # nothing due yet
    (claim,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("WITH due")]
    plan = _explain(claim)
    assert "msg_snoozed_due_idx" in plan, plan
    assert "Seq Scan on mailbox_message" not in plan, plan
