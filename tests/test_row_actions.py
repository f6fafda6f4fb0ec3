"""A list row's own buttons (star, archive, delete, read/unread): in place for script, a form post without."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from mailbox.models import Folder, Message
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(alice):
    return store_message(make_account(alice), build_message("Budget", "see attached"), "1")


def _row(page: str, message_id: int) -> str:
    found = re.search(rf'<li class="[^"]*" data-id="{message_id}">.*?</li>', page)
    assert found, "no row"
    return found.group(0)


def test_the_star_answers_script_with_the_new_state(alice_client, stored):
    url = reverse("mailbox:row_action", args=[stored.id])
    response = alice_client.post(url, {"action": "star"}, headers={"Accept": "application/json"})
    assert response.json() == {"flagged": True, "seen": False}
    assert Message.objects.get(id=stored.id).flagged
    response = alice_client.post(url, {"action": "unstar"}, headers={"Accept": "application/json"})
    assert response.json()["flagged"] is False and not Message.objects.get(id=stored.id).flagged


def test_without_script_the_star_posts_the_list_form_and_the_list_comes_back(alice_client, stored):
    inbox = reverse("mailbox:inbox")
    row = _row(alice_client.get(inbox).content.decode(), stored.id)
    star = re.search(r'<button type="submit" class="row-star" formaction="([^"]+)" name="action" value="star"', row)
    assert star and star.group(1) == reverse("mailbox:row_action", args=[stored.id])
    response = alice_client.post(star.group(1), {"action": "star", "next": inbox})
    assert response.status_code == 302 and response["Location"] == inbox
    row = _row(alice_client.get(inbox).content.decode(), stored.id)
    assert 'class="unread starred"' in row and 'aria-pressed="true" aria-label="Remove star"' in row
    assert "#star-filled" in row


def test_row_archive_moves_with_undo_as_the_toolbar_does(alice_client, stored):
    inbox = reverse("mailbox:inbox")
    page = alice_client.get(inbox).content.decode()
    # One group for all rows (mail.js moves it into the row pointed at, with the row's URL).
    group = re.search(r'<span class="row-actions" id="row-actions".*?</span>', page, re.S).group(0)
    for action in ("archive", "trash", "read", "unread"):
        assert f'name="action" value="{action}"' in group
    alice_client.post(reverse("mailbox:row_action", args=[stored.id]), {"action": "archive", "next": inbox})
    assert Message.objects.get(id=stored.id).folder == Folder.ARCHIVE
    page = alice_client.get(inbox).content.decode()
    assert "1 message moved to Archive." in page and 'action="/messages/undo/"' in page
    alice_client.post(reverse("mailbox:undo"), {"next": inbox})
    assert Message.objects.get(id=stored.id).folder == Folder.INBOX


def test_rows_in_the_trash_offer_restore_not_delete(alice_client, alice, stored):
    Message.objects.filter(id=stored.id).update(folder=Folder.TRASH, seen=True)
    page = alice_client.get(reverse("mailbox:folder", args=["trash"])).content.decode()
    group = re.search(r'<span class="row-actions" id="row-actions".*?</span>', page, re.S).group(0)
    assert 'value="inbox" aria-label="Restore"' in group and 'value="trash"' not in group


def test_row_actions_refuse_gets_unknown_actions_and_other_users_messages(alice_client, bob_client, stored):
    url = reverse("mailbox:row_action", args=[stored.id])
    assert alice_client.get(url).status_code == 405
    assert alice_client.post(url, {"action": "forever"}).status_code == 404
    assert bob_client.post(url, {"action": "star"}, headers={"Accept": "application/json"}).status_code == 404
    assert not Message.objects.get(id=stored.id).flagged
