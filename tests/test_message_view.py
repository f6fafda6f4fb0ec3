"""The message page: actions, neighbours, conversation, details and source."""

import pytest
from django.urls import reverse

from mailbox.models import Message
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(alice):
    account = make_account(alice)
    dates = ["Mon, 23 Nov 2026 09:00:00 +0000", "Tue, 24 Nov 2026 09:00:00 +0000", "Wed, 25 Nov 2026 09:00:00 +0000"]
    first = store_message(account, build_message("Plan", "a", date=dates[0], message_id="<p1@x>"), "1")
    second = store_message(account, build_message("Other", "b", date=dates[1], message_id="<o1@x>"), "2")
    raw = build_message("Re: Plan", "c", date=dates[2], message_id="<p2@x>").replace(
        b"Message-ID: <p2@x>\r\n", b"Message-ID: <p2@x>\r\nIn-Reply-To: <p1@x>\r\nReferences: <p1@x>\r\n"
    )
    third = store_message(account, raw, "3")
    return first, second, third


@pytest.mark.sqlite  # plain SQL: the dates compare as text there
def test_neighbours_follow_the_folder_order(alice_client, three):
    first, second, third = three
    page = alice_client.get(reverse("mailbox:message", args=[second.id]))
    assert (page.context["newer"], page.context["older"]) == (third.id, first.id)


@pytest.mark.sqlite  # the lines are read in plain SQL
def test_conversation_lists_the_other_messages(alice_client, three):
    first, _second, third = three
    page = alice_client.get(reverse("mailbox:message", args=[third.id])).content.decode()
    assert "Conversation (2 messages)" in page
    assert reverse("mailbox:message", args=[first.id]) in page


def test_star_from_the_message_page_stays_on_it(alice_client, three):
    first = three[0]
    url = reverse("mailbox:message", args=[first.id])
    response = alice_client.post(
        reverse("mailbox:bulk") + f"?next={url}", {"action": "star", "ids": [first.id], "next": "/"}
    )
    assert response["Location"] == url
    assert Message.objects.get(id=first.id).flagged


def test_archive_from_the_message_page_returns_to_the_folder(alice_client, three):
    first = three[0]
    response = alice_client.post(reverse("mailbox:bulk"), {"action": "archive", "ids": [first.id], "next": "/"})
    assert response["Location"] == "/"
    assert Message.objects.get(id=first.id).folder == "archive"


def test_view_source_is_plain_text_and_sandboxed(alice_client, three):
    response = alice_client.get(reverse("mailbox:source", args=[three[0].id]))
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Security-Policy"] == "sandbox"
    assert b"Subject: Plan" in b"".join(response.streaming_content)


def test_bob_cannot_view_alices_source(bob_client, three):
    assert bob_client.get(reverse("mailbox:source", args=[three[0].id])).status_code == 404


def test_message_page_has_a_constant_number_of_queries(alice_client, three, django_assert_max_num_queries):
    # 17 with marking it read through actions.set_seen: its transaction is a savepoint (two statements)
    # inside the test's own, a plain transaction when served. Two more for the sender trust line
    # (spam/sender.py): the message's SenderTrust row and the domains of the user's contacts.
    with django_assert_max_num_queries(19):
        alice_client.get(reverse("mailbox:message", args=[three[2].id]))
