"""The message list: folders, keyset pages, bulk actions with undo, search, counts, constant queries."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from mailbox.models import Message
from tests.factories import build_message, make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def bulk_messages(account, count: int, **fields) -> list[Message]:
    now = timezone.now()
    rows = [
        Message(
            owner_id=account.owner_id, account=account, uidl=f"u{i}", sha256="0" * 64, size=10, raw_path="raw/x",
            subject=f"Subject {i}", from_email=f"s{i}@example.net", date=now - dt.timedelta(minutes=i), **fields,
        )
        for i in range(count)
    ]  # fmt: skip
    return Message.objects.bulk_create(rows)


def subjects(response) -> list[str]:
    return [m.subject for m in response.context["page"].rows]


def test_keyset_pages_walk_the_folder_newest_first(alice_client, alice):
    bulk_messages(make_account(alice), 120)
    first = alice_client.get(reverse("mailbox:inbox"))
    assert subjects(first) == [f"Subject {i}" for i in range(50)]
    page = first.context["page"]
    assert page.newer is None and page.older
    second = alice_client.get(reverse("mailbox:inbox") + f"?before={page.older}")
    assert subjects(second) == [f"Subject {i}" for i in range(50, 100)]
    third = alice_client.get(reverse("mailbox:inbox") + f"?before={second.context['page'].older}")
    assert subjects(third) == [f"Subject {i}" for i in range(100, 120)]
    assert third.context["page"].older is None
    back = alice_client.get(reverse("mailbox:inbox") + f"?after={third.context['page'].newer}")
    assert subjects(back) == [f"Subject {i}" for i in range(50, 100)]


def test_bad_cursor_is_a_404(alice_client, alice):
    assert alice_client.get(reverse("mailbox:inbox") + "?before=garbage").status_code == 404


def test_inbox_renders_with_constant_queries(alice_client, alice, django_assert_max_num_queries):
    account = make_account(alice)
    bulk_messages(account, 10)
    with django_assert_max_num_queries(12):
        alice_client.get(reverse("mailbox:inbox"))
    bulk_messages(make_account(alice, username="other"), 200)
    with django_assert_max_num_queries(12):
        alice_client.get(reverse("mailbox:inbox"))


def test_bulk_archive_then_undo(alice_client, alice):
    rows = bulk_messages(make_account(alice), 3)
    ids = [rows[0].id, rows[1].id]
    response = alice_client.post(reverse("mailbox:bulk"), {"action": "archive", "ids": ids})
    assert response.status_code == 302
    assert set(Message.objects.filter(folder="archive").values_list("id", flat=True)) == set(ids)
    alice_client.post(reverse("mailbox:undo"))
    assert Message.objects.filter(folder="inbox").count() == 3


def test_bulk_flags(alice_client, alice):
    (row,) = bulk_messages(make_account(alice), 1)
    alice_client.post(reverse("mailbox:bulk"), {"action": "read", "ids": [row.id]})
    alice_client.post(reverse("mailbox:bulk"), {"action": "star", "ids": [row.id]})
    row.refresh_from_db()
    assert row.seen and row.flagged


def test_trash_keeps_the_server_copy_until_deleted_for_good(alice_client, alice):
    (row, other) = bulk_messages(make_account(alice, policy="mirror"), 2)
    alice_client.post(reverse("mailbox:bulk"), {"action": "trash", "ids": [row.id, other.id]})
    row.refresh_from_db()
    assert (row.folder, row.server_state) == ("trash", "on_server")
    alice_client.post(reverse("mailbox:bulk"), {"action": "inbox", "ids": [row.id]})
    alice_client.post(reverse("mailbox:bulk"), {"action": "forever", "ids": [row.id, other.id]})
    row.refresh_from_db()
    other.refresh_from_db()
    assert (row.folder, row.server_state) == ("inbox", "on_server")  # not in the trash: untouched
    assert (other.folder, other.server_state) == ("purged", "delete_pending")


def test_bob_cannot_act_on_alices_messages(bob_client, alice):
    (row,) = bulk_messages(make_account(alice), 1)
    bob_client.post(reverse("mailbox:bulk"), {"action": "trash", "ids": [row.id]})
    bob_client.post(reverse("mailbox:bulk"), {"action": "read", "ids": [row.id]})
    row.refresh_from_db()
    assert (row.folder, row.seen) == ("inbox", False)


def test_bulk_rejects_unknown_actions_and_foreign_redirects(alice_client, alice):
    (row,) = bulk_messages(make_account(alice), 1)
    response = alice_client.post(
        reverse("mailbox:bulk"), {"action": "purge", "ids": [row.id], "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("mailbox:inbox")
    assert Message.objects.filter(id=row.id).exists()


def test_bulk_needs_post_and_csrf(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(reverse("mailbox:bulk")).status_code == 405
    assert client.post(reverse("mailbox:bulk"), {"action": "read"}).status_code == 403


def test_search_operators_and_highlight(alice_client, alice):
    account = make_account(alice)
    store_message(account, build_message("Quarterly report", "numbers inside", sender="Anna <anna@corp.test>"), "1")
    store_message(account, build_message("Lunch", "pizza", sender="Ben <ben@corp.test>"), "2")
    response = alice_client.get(reverse("mailbox:inbox") + "?q=from:anna")
    assert subjects(response) == ["Quarterly report"]
    response = alice_client.get(reverse("mailbox:inbox") + "?q=pizza")
    assert subjects(response) == ["Lunch"]
    response = alice_client.get(reverse("mailbox:inbox") + "?q=quarterly")
    assert "<mark>Quarterly</mark>" in response.content.decode()
    response = alice_client.get(reverse("mailbox:inbox") + "?q=before:yesterday")
    assert "write dates as YYYY-MM-DD" in response.content.decode()


def test_search_highlight_in_the_page_never_splits_an_escaped_character(alice_client, alice):
    account = make_account(alice)
    store_message(account, build_message("Tom & Jerry's amp 27", "x"), "1")
    page = alice_client.get(reverse("mailbox:inbox") + "?q=amp 27").content.decode()
    assert "Tom &amp; Jerry&#x27;s <mark>amp</mark> <mark>27</mark>" in page
    assert "&<mark>" not in page and "#x<mark>" not in page


def test_search_never_shows_another_users_mail(bob_client, alice):
    store_message(make_account(alice), build_message("Secret plans", "x"), "1")
    response = bob_client.get(reverse("mailbox:inbox") + "?q=secret")
    assert subjects(response) == []


def test_account_filter_is_checked(bob_client, alice):
    account = make_account(alice)
    assert bob_client.get(reverse("mailbox:inbox") + f"?account={account.id}").status_code == 404


def test_counts_report_unread_and_newest(alice_client, alice):
    rows = bulk_messages(make_account(alice), 3)
    data = alice_client.get(reverse("mailbox:counts")).json()
    assert data == {"unread": 3, "newest": rows[0].id}
    page = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert "<title>(3) Inbox · webpop</title>" in page
