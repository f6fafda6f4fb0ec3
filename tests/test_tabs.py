"""Inbox tabs: sorted at ingest, by the backfill for older mail and by the user's choice for a sender;
the tab strip, its unread counts, and the preference."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import Profile
from accounts.views_prefs import save_preferences
from contacts import actions as contact_actions
from mailbox import actions, search, tabs, tabs_backfill
from mailbox.categories import Category
from mailbox.models import Message, SenderCategory, TabBackfill
from tests.factories import build_message, make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def newsletter(n: int = 1, sender: str = "Shop <news@shop.example>") -> bytes:
    raw = build_message(f"{n}0% off everything", sender=sender, message_id=f"<promo{n}.{sender[-12:-1]}@shop.example>")
    return b"List-Unsubscribe: <https://shop.example/u>\r\nPrecedence: bulk\r\n" + raw


def receipt(n: int = 1) -> bytes:
    raw = build_message(f"Your receipt #{n}", sender="Store <receipts@store.example>", message_id=f"<r{n}@s.example>")
    return b"X-SES-Outgoing: 2026.01.01\r\nFeedback-ID: 1:ses\r\n" + raw


def forum(n: int = 1) -> bytes:
    raw = build_message(f"Re: question {n}", sender="Dan <dan@example.org>", message_id=f"<l{n}@lists.example>")
    return b"List-Id: <users.lists.example>\r\nList-Post: <mailto:users@lists.example>\r\n" + raw


def personal(n: int = 1) -> bytes:
    return build_message(f"Lunch {n}?", sender="Carol <carol@example.net>", message_id=f"<p{n}@example.net>")


@pytest.fixture
def account(alice):
    return make_account(alice)


def test_ingest_sorts_new_mail(account):
    stored = [
        store_message(account, raw, f"u{i}") for i, raw in enumerate([newsletter(), receipt(), forum(), personal()])
    ]
    assert [m.category for m in stored] == [Category.PROMOTIONS, Category.UPDATES, Category.FORUMS, None]
    assert set(Message.objects.values_list("category", flat=True)) == {2, 1, 3, None}


def test_mail_from_a_contact_stays_primary(alice, account):
    contact_actions.record(alice.id, [("Shop", "news@shop.example")], timezone.now())  # alice wrote to them
    assert store_message(account, newsletter(), "u1").category is None


def test_moving_a_sender_sorts_their_mail_now_and_later(alice, bob, account):
    first = store_message(account, newsletter(1), "u1")
    store_message(account, newsletter(2), "u2")
    other = store_message(account, newsletter(3, sender="Other <deals@other.example>"), "u3")
    bobs = store_message(make_account(bob), newsletter(1), "b1")
    assert actions.move_sender_to_tab(alice.id, first.id, Category.PRIMARY) == 2
    assert set(
        Message.objects.filter(owner=alice, from_email="news@shop.example").values_list("category", flat=True)
    ) == {None}
    assert Message.objects.get(id=other.id).category == Category.PROMOTIONS
    assert Message.objects.get(id=bobs.id).category == Category.PROMOTIONS  # bob's choice is bob's
    assert store_message(account, newsletter(4), "u4").category is None  # and mail to come
    actions.move_sender_to_tab(alice.id, other.id, Category.UPDATES)
    assert store_message(account, newsletter(5, sender="Other <DEALS@other.example>"), "u5").category == 1
    assert SenderCategory.objects.filter(owner=alice).count() == 2
    with pytest.raises(actions.ActionError):  # someone else's message: as if it did not exist
        actions.move_sender_to_tab(alice.id, bobs.id, Category.FORUMS)


def test_unread_counts_per_tab(alice, account):
    for i in range(3):
        store_message(account, newsletter(i), f"n{i}")
    store_message(account, receipt(), "r")
    seen = store_message(account, forum(), "f")
    store_message(account, personal(), "p")
    Message.objects.filter(id=seen.id).update(seen=True)
    assert tabs.unread_counts(alice.id) == {"primary": 1, "updates": 1, "promotions": 3, "forums": 0}


def tab_rows(response) -> list[str]:
    return [row.subject for row in response.context["page"].rows]


def test_inbox_tabs_when_turned_on(alice, alice_client, account):
    store_message(account, newsletter(), "n")
    store_message(account, personal(), "p")
    store_message(account, receipt(), "r")
    plain = alice_client.get(reverse("mailbox:inbox"))
    assert plain.context["tabs"] is None and len(tab_rows(plain)) == 3
    assert b"inbox-tabs" not in plain.content
    prefs = alice_client.get(reverse("accounts:preferences")).content.decode()
    assert 'name="inbox_tabs"' in prefs and "Sort the Inbox into tabs" in prefs
    alice_client.post(reverse("accounts:preferences"), {"time_zone": "", "inbox_tabs": "on"})
    assert Profile.objects.get(user=alice).inbox_tabs
    page = alice_client.get(reverse("mailbox:inbox"))  # the page cache keys on the choice
    assert tab_rows(page) == ["Lunch 1?"]
    html = page.content.decode()
    assert 'aria-label="Inbox tabs"' in html and 'aria-current="page"><span class="tab-name">Primary' in html
    assert [(t.slug, t.count) for t in page.context["tabs"]] == [
        ("primary", 1), ("updates", 1), ("promotions", 1), ("forums", 0)
    ]  # fmt: skip
    promotions = alice_client.get(reverse("mailbox:inbox") + "?tab=promotions")
    assert tab_rows(promotions) == ["10% off everything"]
    assert 'href="?view=conversations&amp;tab=promotions"' in promotions.content.decode()
    assert tab_rows(alice_client.get(reverse("mailbox:inbox") + "?tab=updates&view=conversations")) == [
        "Your receipt #1"
    ]
    assert tab_rows(alice_client.get(reverse("mailbox:inbox") + "?tab=forums")) == []
    assert "Nothing in this tab." in alice_client.get(reverse("mailbox:inbox") + "?tab=forums").content.decode()
    # Other folders and searches are not tabbed.
    assert alice_client.get(reverse("mailbox:inbox") + "?q=off").context["tabs"] is None


def test_move_to_tab_from_the_message_page(alice, alice_client, bob_client, account):
    save_preferences(alice, time_zone="", conversations=True, inbox_tabs=True)
    message = store_message(account, newsletter(), "n")
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert "Move to Primary" in page and "Move to Promotions" not in page
    url = reverse("mailbox:sender_tab", args=[message.id])
    assert bob_client.post(url, {"tab": "primary"}).status_code == 404
    assert alice_client.post(url, {"tab": "nowhere"}).status_code == 404
    assert alice_client.get(url).status_code == 405
    response = alice_client.post(url, {"tab": "primary", "next": reverse("mailbox:inbox")})
    assert response.status_code == 302 and response.url == reverse("mailbox:inbox")
    assert Message.objects.get(id=message.id).category is None
    assert tab_rows(alice_client.get(reverse("mailbox:inbox"))) == ["10% off everything"]


def test_backfill_sorts_older_mail_newest_first_and_leaves_choices(alice, account):
    stored = [
        store_message(account, raw, f"u{i}") for i, raw in enumerate([newsletter(1), receipt(), forum(), personal()])
    ]
    Message.objects.update(category=None)  # as stored before tabs
    SenderCategory.objects.create(owner=alice, address="receipts@store.example", category=0)
    TabBackfill.objects.create(below_id=stored[-1].id + 1)
    assert tabs_backfill.backfill(batches=1, batch=2) == 2  # the newest two
    assert TabBackfill.objects.get().below_id == stored[2].id
    assert tabs_backfill.backfill(batches=5, batch=2) == 2
    assert not TabBackfill.objects.exists()  # done: nothing left for the sweep
    categories = dict(Message.objects.values_list("id", "category"))
    assert [categories[m.id] for m in stored] == [Category.PROMOTIONS, None, Category.FORUMS, None]
    assert tabs_backfill.backfill() == 0


def test_backfill_is_claimed_by_one_worker(account):
    store_message(account, newsletter(), "u1")
    row = TabBackfill.objects.create(below_id=10**9, lease_until=timezone.now() + dt.timedelta(minutes=1))
    assert tabs_backfill.backfill() == 0  # another worker holds it
    TabBackfill.objects.filter(id=row.id).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    assert tabs_backfill.backfill() == 1  # a lapsed lease is taken over


def test_search_still_finds_new_mail(alice_client, account):
    """On SQLite the full-text index is kept by triggers, which a table rebuild would drop: the tabs
    migration adds a nullable column (no rebuild), so new mail is still found."""
    store_message(account, build_message("Quarterly zeppelin report", message_id="<z@example.net>"), "z")
    search.index_all_pending()
    assert tab_rows(alice_client.get(reverse("mailbox:inbox") + "?q=zeppelin")) == ["Quarterly zeppelin report"]


def test_an_index_serves_each_tab_count_and_list(alice, account):
    """With an Inbox of mostly read mail, each tab's unread count reads the unread index and a tab's
    first page reads the tab's order index, with no sort."""
    now = timezone.now()
    rows = [
        Message(
            owner=alice, account=account, uidl=f"b{i}", sha256="0" * 64, size=10, raw_path="raw/x",
            from_email=f"s{i % 50}@example.net", date=now - dt.timedelta(minutes=i), seen=i % 500 != 0,
            category=[None, 1, 2, 3][i % 4],
        )
        for i in range(4000)
    ]  # fmt: skip
    Message.objects.bulk_create(rows)
    table = Message._meta.db_table
    queries = [
        f"SELECT 1 FROM {table} WHERE owner_id = %s AND folder = 'inbox' AND category = 2 AND NOT seen LIMIT 1000",
        f"SELECT 1 FROM {table} WHERE owner_id = %s AND folder = 'inbox' AND category IS NULL AND NOT seen LIMIT 1000",
        f"SELECT id FROM {table} WHERE owner_id = %s AND folder = 'inbox' AND category = 2 "
        "ORDER BY COALESCE(surfaced_at, date) DESC, id DESC LIMIT 51",
    ]
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}" if postgres else "ANALYZE")
        plans = []
        for sql in queries:
            cursor.execute(f"{'EXPLAIN' if postgres else 'EXPLAIN QUERY PLAN'} {sql}", [alice.id])
            plans.append(" ".join(str(part) for row in cursor.fetchall() for part in row))
    assert "msg_owner_tab_unread_idx" in plans[0], plans
    # Primary (NULL): SQLite may prefer the Inbox's own unread index; both hold unread rows only.
    assert "msg_owner_tab_unread_idx" in plans[1] or (not postgres and "msg_owner_unread_idx" in plans[1]), plans
    assert "msg_owner_tab_order_idx" in plans[2] and "sort" not in plans[2].lower(), plans


def test_select_all_in_a_tab_is_that_tab(
    alice, alice_client, account, bulk_enqueued, django_capture_on_commit_callbacks
):
    from mailbox import bulkjobs

    save_preferences(alice, time_zone="", conversations=False, inbox_tabs=True)
    for i in range(3):
        store_message(account, newsletter(i), f"n{i}")
    store_message(account, personal(), "p")
    page = alice_client.get(reverse("mailbox:inbox") + "?tab=promotions")
    assert page.context["list_criteria"] == "folder=inbox&tab=promotions"
    counted = alice_client.get(reverse("mailbox:bulk_count"), {"folder": "inbox", "tab": "promotions"}).json()
    assert counted["count"] == 3 and "in Promotions" in counted["offer"]
    assert alice_client.get(reverse("mailbox:bulk_count"), {"folder": "inbox", "tab": "primary"}).json()["count"] == 1
    assert alice_client.get(reverse("mailbox:bulk_count"), {"folder": "inbox", "tab": "x"}).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(
            reverse("mailbox:bulk"),
            {"action": "archive", "scope": "all", "criteria": "folder=inbox&tab=promotions", "next": "/"},
        )
    assert bulkjobs.run(bulk_enqueued[0]) == "done"
    assert list(Message.objects.filter(folder="inbox").values_list("subject", flat=True)) == ["Lunch 1?"]


def test_the_sweep_is_scheduled_and_the_migration_starts_it(settings, account):
    from django.apps import apps as global_apps

    from mailbox import tasks

    migration = importlib.import_module("mailbox.migrations.0018_inbox_tabs")
    assert settings.CELERY_BEAT_SCHEDULE["sort-into-tabs"]["task"] == "mailbox.tasks.sort_into_tabs"
    migration.start_backfill(global_apps, None)
    assert not TabBackfill.objects.exists()  # no mail yet: nothing to sort
    message = store_message(account, newsletter(), "n")
    Message.objects.update(category=None)
    migration.start_backfill(global_apps, None)
    assert TabBackfill.objects.get().below_id == message.id + 1
    assert tasks.sort_into_tabs() == 1  # as beat runs it
    assert Message.objects.get().category == Category.PROMOTIONS and not TabBackfill.objects.exists()
