"""User folders: create, rename, delete; listing, moving into them, and the delivery folder per account."""

import datetime as dt
import itertools

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import MailAccount
from mailbox import actions, folders
from mailbox.models import Message, Rule, UserFolder
from tests.factories import make_account
from tests.test_account_manage import edit_data
from tests.test_inbox import subjects

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

_uidls = itertools.count()


def bulk_messages(account, count: int, **fields) -> list[Message]:
    now = timezone.now()
    rows = [
        Message(
            owner_id=account.owner_id, account=account, uidl=f"f{next(_uidls)}", sha256="0" * 64, size=10,
            raw_path="raw/x", subject=f"Subject {i}", from_email=f"s{i}@example.net",
            date=now - dt.timedelta(minutes=i), **fields,
        )
        for i in range(count)
    ]  # fmt: skip
    return Message.objects.bulk_create(rows)


def test_create_rename_and_delete_a_folder_through_the_page(alice_client, alice):
    alice_client.post(reverse("mailbox:folders"), {"name": "  Receipts  "})
    folder = UserFolder.objects.get(owner=alice)
    assert folder.name == "Receipts"
    alice_client.post(reverse("mailbox:folder_rename", args=[folder.id]), {"name": "Bills"})
    folder.refresh_from_db()
    assert folder.name == "Bills"
    page = alice_client.get(reverse("mailbox:folders")).content.decode()
    assert "Bills" in page
    alice_client.post(reverse("mailbox:folder_delete", args=[folder.id]))
    assert not UserFolder.objects.exists()


def test_folder_names_must_be_new_and_not_built_in(alice, bob):
    folders.create(alice.id, "Work")
    with pytest.raises(folders.FolderError, match="already"):
        folders.create(alice.id, "Work")
    with pytest.raises(folders.FolderError, match="built-in"):
        folders.create(alice.id, "inbox")
    with pytest.raises(folders.FolderError, match="name"):
        folders.create(alice.id, "   ")
    assert folders.create(bob.id, "Work").owner_id == bob.id  # names are per user


def test_deleting_a_folder_returns_its_mail_to_the_inbox_and_forgets_what_filed_into_it(alice):
    account = make_account(alice)
    folder = folders.create(alice.id, "Newsletters")
    rows = bulk_messages(account, 2, folder=folder.slug)
    MailAccount.objects.filter(id=account.id).update(deliver_to=folder.slug)
    Rule.objects.create(owner=alice, field="from", contains="x", action="move", folder=folder.slug)
    assert folders.delete(folder) == 2
    assert set(Message.objects.filter(id__in=[r.id for r in rows]).values_list("folder", flat=True)) == {"inbox"}
    account.refresh_from_db()
    assert account.deliver_to == "inbox"
    assert not Rule.objects.exists()


def test_a_user_folder_lists_its_messages_and_the_nav_shows_unread_counts(alice_client, alice):
    account = make_account(alice)
    folder = folders.create(alice.id, "Travel")
    bulk_messages(account, 3, folder=folder.slug)
    bulk_messages(account, 1)
    response = alice_client.get(reverse("mailbox:folder", args=[folder.slug]))
    assert response.status_code == 200
    assert len(subjects(response)) == 3
    assert response.context["folder_label"] == "Travel"
    html = response.content.decode()
    link = reverse("mailbox:folder", args=[folder.slug])
    assert f'href="{link}" aria-current="page">' in html
    assert '<span class="label" dir="auto">Travel</span><span class="count">3</span>' in html
    for name in ("folders", "rules", "import"):
        assert reverse(f"mailbox:{name}") in html


def test_inbox_with_user_folders_still_renders_with_constant_queries(
    alice_client, alice, django_assert_max_num_queries
):
    account = make_account(alice)
    for i in range(5):
        folder = folders.create(alice.id, f"F{i}")
        bulk_messages(account, 2, folder=folder.slug)
    with django_assert_max_num_queries(12):
        alice_client.get(reverse("mailbox:inbox"))


def test_bulk_move_to_a_user_folder_and_undo(alice_client, alice):
    rows = bulk_messages(make_account(alice), 2)
    folder = folders.create(alice.id, "Keep")
    response = alice_client.post(
        reverse("mailbox:bulk"), {"action": "move", "folder": folder.slug, "ids": [rows[0].id]}, follow=True
    )
    assert "1 message moved to Keep." in response.content.decode()
    assert Message.objects.get(id=rows[0].id).folder == folder.slug
    alice_client.post(reverse("mailbox:bulk"), {"action": "trash", "ids": [rows[0].id]})
    alice_client.post(reverse("mailbox:undo"))
    assert Message.objects.get(id=rows[0].id).folder == folder.slug  # undo puts it back in the user folder


def test_the_move_menu_offers_system_and_user_folders(alice_client, alice):
    bulk_messages(make_account(alice), 1)
    folder = folders.create(alice.id, "Projects")
    html = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert f'<button name="move_to" value="{folder.slug}" dir="auto">Projects</button>' in html
    assert '<button name="move_to" value="archive" dir="auto">Archive</button>' in html
    assert 'name="move_to" value="inbox"' not in html  # not into the folder shown


def test_a_button_of_the_move_menu_moves_the_selected_messages(alice_client, alice):
    rows = bulk_messages(make_account(alice), 2)
    folder = folders.create(alice.id, "Keep")
    response = alice_client.post(reverse("mailbox:bulk"), {"move_to": folder.slug, "ids": [rows[0].id]}, follow=True)
    assert "1 message moved to Keep." in response.content.decode()
    assert Message.objects.get(id=rows[0].id).folder == folder.slug
    assert Message.objects.get(id=rows[1].id).folder == "inbox"
    alice_client.post(reverse("mailbox:bulk"), {"move_to": "u999999", "ids": [rows[1].id]})
    assert Message.objects.get(id=rows[1].id).folder == "inbox"  # no such folder of hers: nothing moves


def test_nobody_moves_mail_into_someone_elses_folder(alice, bob, bob_client):
    (row,) = bulk_messages(make_account(bob), 1)
    alices = folders.create(alice.id, "Private")
    with pytest.raises(actions.ActionError):
        actions.move(bob.id, [row.id], alices.slug)
    with pytest.raises(actions.ActionError):
        actions.move(bob.id, [row.id], "u999999")
    with pytest.raises(actions.ActionError):
        actions.move(bob.id, [row.id], "purged")
    bob_client.post(reverse("mailbox:bulk"), {"action": "move", "folder": alices.slug, "ids": [row.id]})
    assert Message.objects.get(id=row.id).folder == "inbox"


def test_another_users_folder_is_a_404(alice, bob_client):
    folder = folders.create(alice.id, "Private")
    assert bob_client.get(reverse("mailbox:folder", args=[folder.slug])).status_code == 404
    assert bob_client.get(reverse("mailbox:folder", args=["u12345"])).status_code == 404
    assert bob_client.get(reverse("mailbox:folder", args=["nonsense"])).status_code == 404
    assert bob_client.post(reverse("mailbox:folder_rename", args=[folder.id]), {"name": "Mine"}).status_code == 404
    assert bob_client.post(reverse("mailbox:folder_delete", args=[folder.id])).status_code == 404
    folder.refresh_from_db()
    assert folder.name == "Private"


def test_folder_changes_need_post_and_csrf(alice):
    folder = folders.create(alice.id, "Work")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(reverse("mailbox:folder_delete", args=[folder.id])).status_code == 405
    assert client.post(reverse("mailbox:folder_delete", args=[folder.id])).status_code == 403
    assert client.post(reverse("mailbox:folders"), {"name": "New"}).status_code == 403
    assert UserFolder.objects.filter(owner=alice).count() == 1


def test_account_form_offers_the_users_folders_as_delivery_folder(alice_client, alice, bob):
    account = make_account(alice)
    mine = folders.create(alice.id, "From ISP")
    theirs = folders.create(bob.id, "Bobs")
    page = alice_client.get(reverse("accounts:edit", args=[account.id])).content.decode()
    assert "From ISP" in page and "Bobs" not in page
    response = alice_client.post(reverse("accounts:edit", args=[account.id]), edit_data(account, deliver_to=mine.slug))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.deliver_to == mine.slug
    response = alice_client.post(
        reverse("accounts:edit", args=[account.id]), edit_data(account, deliver_to=theirs.slug)
    )
    assert response.status_code != 302
    account.refresh_from_db()
    assert account.deliver_to == mine.slug
