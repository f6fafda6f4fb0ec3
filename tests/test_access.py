"""Invariant 7: a user sees only their own accounts, messages and attachments."""

import pytest
from django.test import Client
from django.urls import reverse

from mailbox.models import Message
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_mail(alice):
    account = make_account(alice)
    raw = build_message("Private", "for alice only", attachments=[("plan.pdf", "application/pdf", b"%PDF-1.4 x")])
    message = store_message(account, raw, "uid-1")
    return account, message, message.attachments.get()


def test_bob_gets_404_for_alices_objects(bob_client, alices_mail):
    account, message, attachment = alices_mail
    urls = [
        reverse("mailbox:message", args=[message.id]),
        reverse("mailbox:raw", args=[message.id]),
        reverse("mailbox:attachment", args=[attachment.id]),
        reverse("accounts:detail", args=[account.id]),
        reverse("accounts:status", args=[account.id]),
    ]
    for url in urls:
        assert bob_client.get(url).status_code == 404, url
    for url in [reverse("mailbox:delete", args=[message.id]), reverse("accounts:check_now", args=[account.id])]:
        assert bob_client.post(url).status_code == 404, url
    message.refresh_from_db()
    assert message.folder == "inbox"
    assert message.seen is False


def test_bobs_inbox_does_not_list_alices_mail(bob_client, alices_mail):
    response = bob_client.get(reverse("mailbox:inbox"))
    assert response.status_code == 200
    assert b"Private" not in response.content


def test_alice_can_open_her_own_objects(alice_client, alices_mail):
    _, message, attachment = alices_mail
    assert alice_client.get(reverse("mailbox:message", args=[message.id])).status_code == 200
    download = alice_client.get(reverse("mailbox:attachment", args=[attachment.id]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"%PDF-1.4 x"
    assert download["Content-Disposition"].startswith("attachment")
    assert download["Content-Security-Policy"] == "sandbox"
    assert download["X-Content-Type-Options"] == "nosniff"


def test_anonymous_users_are_sent_to_login(alices_mail):
    account, message, attachment = alices_mail
    client = Client()
    for url in [
        reverse("mailbox:inbox"),
        reverse("mailbox:message", args=[message.id]),
        reverse("mailbox:attachment", args=[attachment.id]),
        reverse("accounts:list"),
        reverse("accounts:add"),
        reverse("accounts:detail", args=[account.id]),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_delete_requires_csrf_token(alice, alices_mail):
    _, message, _ = alices_mail
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(reverse("mailbox:delete", args=[message.id])).status_code == 403
    assert Message.objects.get(id=message.id).folder == "inbox"


def test_delete_moves_to_trash_and_emptying_it_marks_for_server_deletion_under_mirror(alice_client, alice):
    account = make_account(alice, policy="mirror")
    message = store_message(account, build_message("Bye"), "uid-9")
    response = alice_client.post(reverse("mailbox:delete", args=[message.id]))
    assert response.status_code == 302
    message.refresh_from_db()
    assert (message.folder, message.server_state) == ("trash", "on_server")  # still undoable
    assert message.deleted_at is not None
    alice_client.post(reverse("mailbox:empty_trash"))
    message.refresh_from_db()
    assert (message.folder, message.server_state, message.raw_path) == ("purged", "delete_pending", "")


def test_delete_under_keep_policy_never_touches_the_server_copy(alice_client, alice):
    account = make_account(alice, policy="keep")
    message = store_message(account, build_message("Stay"), "uid-10")
    alice_client.post(reverse("mailbox:delete", args=[message.id]))
    alice_client.post(reverse("mailbox:empty_trash"))
    message.refresh_from_db()
    assert (message.folder, message.server_state) == ("purged", "on_server")
