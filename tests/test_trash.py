"""Trash: undoable until emptied; emptying frees files, keeps tombstones until the server copy is gone."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from mailbox import actions, storage_gc, store, sync
from mailbox.models import Attachment, Message
from tests.factories import build_message, make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def test_emptying_frees_files_but_keeps_a_tombstone_so_keep_never_refetches(pop_user, dovecot_account, alice):
    pop_user.deliver(build_message("gone soon", attachments=[("a.pdf", "application/pdf", b"%PDF-1.4 data")]))
    account = dovecot_account(policy="keep")
    sync.sync_account(account.id)
    message = Message.objects.get(account=account)
    raw_file = store.path_of(message.raw_path)
    actions.move(alice.id, [message.id], "trash")
    assert actions.empty_trash(alice.id) == 1
    message.refresh_from_db()
    assert (message.folder, message.raw_path, message.server_state) == ("purged", "", "on_server")
    assert not Attachment.objects.exists()
    assert sync.sync_account(account.id).fetched == 0  # the UIDL is still known
    assert len(pop_user.messages()) == 1  # keep: the server copy stays
    # The files are released: the sweep frees them (after their grace period for concurrent stores).
    assert storage_gc.free_released(grace=dt.timedelta(0)).freed == 2
    assert not raw_file.exists()


def test_mirror_tombstone_is_removed_once_the_server_copy_is_deleted(pop_user, dovecot_account, alice):
    pop_user.deliver(build_message("bye"))
    account = dovecot_account(policy="mirror")
    sync.sync_account(account.id)
    message = Message.objects.get(account=account)
    actions.move(alice.id, [message.id], "trash")
    actions.empty_trash(alice.id)
    assert sync.sync_account(account.id).deleted_on_server == 1
    assert pop_user.messages() == []
    assert not Message.objects.filter(id=message.id).exists()


def test_tombstones_do_not_count_against_the_quota_or_show_anywhere(alice_client, alice):
    account = make_account(alice)
    message = store_message(account, build_message("vanishedsubjectxyz"), "1")
    actions.move(alice.id, [message.id], "trash")
    actions.empty_trash(alice.id)
    for url in [
        reverse("mailbox:inbox"),
        reverse("mailbox:folder", args=["trash"]),
        reverse("mailbox:inbox") + "?q=hidden",
    ]:
        assert "vanishedsubjectxyz" not in alice_client.get(url).content.decode()
    assert alice_client.get(reverse("mailbox:folder", args=["purged"])).status_code == 404


def test_trash_expires_after_the_configured_days(alice, bob, settings):
    settings.WEBPOP_TRASH_DAYS = 30
    old = store_message(make_account(alice), build_message("old"), "1")
    new = store_message(make_account(alice, username="x"), build_message("new"), "2")
    bobs = store_message(make_account(bob), build_message("bob's"), "3")
    for message in (old, new, bobs):
        actions.move(message.owner_id, [message.id], "trash")
    Message.objects.filter(id__in=[old.id, bobs.id]).update(deleted_at=timezone.now() - dt.timedelta(days=31))
    assert actions.expire_trash(30) == 2
    assert dict(Message.objects.values_list("id", "folder")) == {old.id: "purged", new.id: "trash", bobs.id: "purged"}


def test_empty_trash_only_touches_your_own(bob_client, alice):
    message = store_message(make_account(alice), build_message("mine"), "1")
    actions.move(alice.id, [message.id], "trash")
    bob_client.post(reverse("mailbox:empty_trash"))
    bob_client.post(reverse("mailbox:bulk"), {"action": "forever", "ids": [message.id]})
    message.refresh_from_db()
    assert message.folder == "trash"


def test_trash_page_explains_and_offers_empty(alice_client, alice):
    message = store_message(make_account(alice, policy="mirror"), build_message("x"), "1")
    actions.move(alice.id, [message.id], "trash")
    page = alice_client.get(reverse("mailbox:folder", args=["trash"])).content.decode()
    assert "Empty trash now" in page and "also from the server" in page


def test_tombstones_cannot_be_moved_or_restored(alice_client, alice):
    message = store_message(make_account(alice), build_message("gone for good"), "1")
    actions.move(alice.id, [message.id], "trash")
    actions.empty_trash(alice.id)
    alice_client.post(reverse("mailbox:bulk"), {"action": "inbox", "ids": [message.id]})
    assert actions.restore(alice.id, {message.id: "inbox"}) == 0
    message.refresh_from_db()
    assert message.folder == "purged"
