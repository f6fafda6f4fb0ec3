"""A conversation read as one page (mailbox/conversation.py, mailbox/views_conversation.py).

The page shows the thread's messages oldest first, the opened one and the newest unread ones
expanded (and marked read, in one UPDATE), the others as one line whose body comes from the
part URL when the reader expands it.
"""

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mailbox import actions, conversation, views_html
from mailbox.models import Folder, Message
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db
FILLER = "Words to fill the snippet, which stops before the end of a longer body. " * 5


def reply_to(raw: bytes, parent: str) -> bytes:
    return raw.replace(b"\r\n\r\n", f"\r\nIn-Reply-To: {parent}\r\nReferences: {parent}\r\n\r\n".encode(), 1)


def make_thread(account, count: int, *, prefix: str = "t", subject: str = "Plan") -> list[Message]:
    """``count`` messages, each answering the one before, a day apart; each body names its position."""
    messages = []
    for n in range(count):
        date = f"{1 + n % 28:02d} Nov 2026 {9 + n // 28:02d}:00:00 +0000"
        raw = build_message(
            subject if n == 0 else f"Re: {subject}",
            f"Body number {n} of {prefix}.\n\n{FILLER}\n\nSaid only in the body of {n}.",
            sender=f"Writer {n} <w{n}@example.net>",
            date=f"Mon, {date}",
            message_id=f"<{prefix}{n}@example.net>",
        )
        if n:
            raw = reply_to(raw, f"<{prefix}{n - 1}@example.net>")
        messages.append(store_message(account, raw, f"{prefix}-{n}"))
    assert len({Message.objects.get(id=m.id).thread_id for m in messages}) == 1
    return messages


def page_of(client, message, **query) -> str:
    response = client.get(reverse("mailbox:message", args=[message.id]), query)
    assert response.status_code == 200
    return response.content.decode()


def shown_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="conv-item" id="m(\d+)"', html)]


def expanded_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<div class="part" data-part data-message-id="(\d+)">', html)]


@pytest.fixture
def account(alice):
    return make_account(alice)


def test_the_page_shows_every_message_of_the_thread_oldest_first(alice_client, account, bob):
    first, second, third = make_thread(account, 3)
    unrelated = store_message(account, build_message("Other", "Not in the thread."), "other")
    gone_raw = build_message("Re: Plan", "Deleted for good.", message_id="<gone@x>")
    gone = store_message(account, reply_to(gone_raw, "<t2@example.net>"), "g")
    assert Message.objects.get(id=gone.id).thread_id == Message.objects.get(id=first.id).thread_id
    actions.move(account.owner_id, [gone.id], Folder.TRASH)
    actions.empty_trash(account.owner_id, [gone.id])
    # bob has copies of the same messages: his conversation, not alice's.
    bob_account = make_account(bob)
    make_thread(bob_account, 2)
    html = page_of(alice_client, second)
    assert shown_ids(html) == [first.id, second.id, third.id]
    assert unrelated.id not in shown_ids(html) and gone.id not in shown_ids(html)
    assert 'aria-label="Conversation (3 messages)"' in html


def test_the_opened_and_the_unread_messages_are_expanded_and_only_they_become_read(alice_client, account):
    first, second, third, fourth = make_thread(account, 4)
    actions.set_seen(account.owner_id, [first.id, second.id, third.id], True)
    actions.set_seen(account.owner_id, [second.id], False)
    html = page_of(alice_client, first)
    assert expanded_ids(html) == [first.id, second.id, fourth.id]
    assert "Body number 0 of t." in html and "Body number 3 of t." in html
    assert "Said only in the body of 2." not in html  # collapsed: its line shows the snippet, not the body
    assert f'<a href="/message/{third.id}/">Open this message</a>' in html  # without script
    read = set(Message.objects.filter(seen=True).values_list("id", flat=True))
    assert read == {first.id, second.id, third.id, fourth.id}


def test_opening_marks_read_with_one_update_and_touches_the_list_only_when_something_changed(alice_client, account):
    messages = make_thread(account, 3)
    key = f"mailbox-version:{account.owner_id}"
    cache.set(key, "before")
    with CaptureQueriesContext(connection) as queries:
        page_of(alice_client, messages[-1])
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "mailbox_message" SET "seen"')]
    assert len(updates) == 1 and all(str(m.id) in updates[0] for m in messages)
    assert cache.get(key) != "before"  # the lists showing these as unread are out of date
    cache.set(key, "after")
    with CaptureQueriesContext(connection) as queries:
        page_of(alice_client, messages[-1])
    assert not [q for q in queries if q["sql"].startswith("UPDATE") and "mailbox_message" in q["sql"]]
    assert cache.get(key) == "after"  # nothing changed: cached lists stay


def test_mark_opened_changes_only_the_owners_rows(alice, bob, account):
    [mine] = make_thread(account, 1)
    [his] = make_thread(make_account(bob), 1, prefix="b")
    assert actions.mark_opened(alice.id, [mine.id, his.id]) == 1
    assert Message.objects.get(id=mine.id).seen and not Message.objects.get(id=his.id).seen
    assert actions.mark_opened(alice.id, [mine.id]) == 0


def test_a_collapsed_message_is_expanded_through_its_part_url(alice_client, account):
    first, second, third = make_thread(account, 3)
    actions.set_seen(account.owner_id, [first.id, second.id, third.id], True)
    html = page_of(alice_client, third)
    assert first.id not in expanded_ids(html) and f'data-part-url="/message/{first.id}/part/"' in html
    Message.objects.filter(id=first.id).update(seen=False)
    url = reverse("mailbox:message_part", args=[first.id])
    assert alice_client.get(url).status_code == 405  # it marks the message read: POST only
    part = alice_client.post(url).content.decode()
    assert expanded_ids(part) == [first.id] and "Said only in the body of 0." in part
    assert f'action="{reverse("outgoing:reply", args=[first.id])}"' in part  # reply, reply all, forward from it
    assert Message.objects.get(id=first.id).seen
    plain = alice_client.post(url, {}, QUERY_STRING="view=text").content.decode()
    assert "plain-body" in plain


def test_the_part_url_needs_the_csrf_token_and_the_owner(alice, bob_client, account):
    [message] = make_thread(account, 1)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(reverse("mailbox:message_part", args=[message.id])).status_code == 403
    assert bob_client.post(reverse("mailbox:message_part", args=[message.id])).status_code == 404
    assert not Message.objects.get(id=message.id).seen


def test_each_expanded_message_has_its_own_actions(alice_client, account):
    messages = make_thread(account, 2)
    actions.set_seen(account.owner_id, [messages[0].id], True)
    actions.set_flagged(account.owner_id, [messages[0].id], True)
    html = page_of(alice_client, messages[0])  # both expanded: the opened one and the unread one
    for m in messages:
        assert f'action="{reverse("outgoing:reply", args=[m.id])}"' in html
        assert f'href="/message/{m.id}/source/"' in html and f'href="/message/{m.id}/print/"' in html
    assert html.count('name="action" value="unstar"') == 1 and html.count('name="action" value="star"') == 1
    # Starring comes back to this page.
    assert html.count(f'name="next" value="/message/{messages[0].id}/"') == 2


def test_the_toolbar_acts_on_the_conversation_in_the_opened_messages_folder(alice_client, account):
    first, second, third = make_thread(account, 3)
    actions.move(account.owner_id, [second.id], Folder.SENT)  # say, the reply alice sent
    html = page_of(alice_client, third)
    toolbar = html.split('class="toolbar message-actions"', 1)[1].split("</form>", 1)[0]
    assert sorted(int(i) for i in re.findall(r'name="ids" value="(\d+)"', toolbar)) == [first.id, third.id]
    assert '<small class="conv-folder" dir="auto">Sent</small>' in html
    alice_client.post(reverse("mailbox:bulk"), {"action": "archive", "ids": [first.id, third.id], "next": "/"})
    assert dict(Message.objects.values_list("id", "folder")) == {
        first.id: Folder.ARCHIVE,
        second.id: Folder.SENT,
        third.id: Folder.ARCHIVE,
    }


def test_a_long_thread_shows_its_newest_messages_and_counts_the_earlier(alice_client, account, monkeypatch):
    monkeypatch.setattr(conversation, "SHOWN", 3)
    messages = make_thread(account, 6)
    html = page_of(alice_client, messages[-1])
    assert shown_ids(html) == [m.id for m in messages[3:]]
    assert f'<a href="/message/{messages[-1].id}/?earlier=all">3 earlier messages</a>' in html
    assert shown_ids(page_of(alice_client, messages[-1], earlier="all")) == [m.id for m in messages]
    # An older message opened on its own (from a search, say) is on its page too, first.
    older = page_of(alice_client, messages[1])
    assert shown_ids(older) == [messages[1].id] + [m.id for m in messages[3:]]
    assert "2 earlier messages" in older
    # The print view prints what the page shows.
    printed = alice_client.get(reverse("mailbox:print_conversation", args=[messages[-1].id])).content.decode()
    assert [f"Writer {n}" for n in (3, 4, 5)] == re.findall(r"<h2 dir=\"auto\">(Writer \d)</h2>", printed)
    assert "the newest of 6" in printed


def test_the_queries_do_not_grow_with_the_thread(alice_client, account, django_assert_max_num_queries):
    short = make_thread(account, 2, prefix="s")
    long = make_thread(account, 12, prefix="l", subject="Long")
    actions.set_seen(account.owner_id, [m.id for m in short + long], True)
    for thread in (short, long):
        page_of(alice_client, thread[-1])  # the opened message's body read once
    with CaptureQueriesContext(connection) as few:
        page_of(alice_client, short[-1])
    with CaptureQueriesContext(connection) as many:
        page_of(alice_client, long[-1])
    assert len(many) == len(few), [q["sql"][:150] for q in many]


def test_plain_bodies_are_read_from_the_stored_file_once(alice_client, account, monkeypatch):
    [message] = make_thread(account, 1)
    reads = []
    parse = views_html._parse
    monkeypatch.setattr(views_html, "_parse", lambda m: reads.append(m.id) or parse(m))
    for _ in range(3):
        assert "Body number 0 of t." in page_of(alice_client, message)
    assert reads == [message.id]
    cache.clear()  # the cache away: the text is read again, the page still shows it
    assert "Body number 0 of t." in page_of(alice_client, message)
    assert reads == [message.id, message.id]


def test_a_message_outside_any_conversation_is_shown_alone_expanded(alice_client, account):
    message = store_message(account, build_message("Alone", "Just me."), "alone")
    Message.objects.filter(id=message.id).update(thread_id=None)
    html = page_of(alice_client, message)
    assert shown_ids(html) == expanded_ids(html) == [message.id]


def test_a_message_whose_stored_copy_is_gone_says_so_in_its_place(alice_client, account, settings):
    first, second = make_thread(account, 2)
    Message.objects.filter(id=second.id).update(raw_path=f"raw/00/{'0' * 64}.eml")  # no such file
    html = page_of(alice_client, second)
    part = html.split(f'data-message-id="{second.id}"', 1)[1]
    assert "The original of this message is damaged" in part  # and marked as missing
    assert expanded_ids(html) == [first.id, second.id] and "Said only in the body of 0." in html


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", r"\b[A-Z][a-z]{2}, Nov 1, 2026, \d{1,2}:00 [AP]M<"), ("de", r"\b[A-Z][a-z], 1\. Nov\.? 2026, \d\d:00<")],
)
def test_the_header_date_reads_as_people_write_it_in_their_language(alice_client, account, language, expected):
    (message,) = make_thread(account, 1)
    alice_client.cookies["django_language"] = language
    html = page_of(alice_client, message)
    header = re.search(r"<dd><time datetime=[^>]*>([^<]*<)", html)
    assert header and re.search(expected, header.group(1)), header and header.group(1)
