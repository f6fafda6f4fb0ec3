"""Conversations: Message-ID / In-Reply-To / References in any arrival order, subject fallback."""

import re

import pytest

from mailbox import threads
from mailbox.models import Message
from tests.factories import make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def raw(subject, message_id, in_reply_to="", references="", date="Thu, 26 Nov 2026 09:00:00 +0000"):
    headers = [f"Subject: {subject}", f"Message-ID: <{message_id}>", "From: a@example.net", f"Date: {date}"]
    if in_reply_to:
        headers.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        headers.append("References: " + " ".join(f"<{r}>" for r in references.split()))
    return ("\r\n".join(headers) + "\r\n\r\nbody\r\n").encode()


def thread_of(subject):
    return Message.objects.get(subject=subject).thread_id


def test_reply_joins_the_original(alice):
    account = make_account(alice)
    store_message(account, raw("Plan", "a@x"), "1")
    store_message(account, raw("Re: Plan", "b@x", in_reply_to="a@x", references="a@x"), "2")
    store_message(account, raw("Other", "c@x"), "3")
    assert thread_of("Plan") == thread_of("Re: Plan") != thread_of("Other")


def test_reply_that_arrives_first_is_merged_when_the_original_comes(alice):
    account = make_account(alice)
    store_message(account, raw("Re: Trip", "r2@x", in_reply_to="r1@x", references="r0@x r1@x"), "1")
    store_message(account, raw("Trip", "r0@x"), "2")
    store_message(account, raw("Re: Trip (middle)", "r1@x", in_reply_to="r0@x", references="r0@x"), "3")
    assert len({m.thread_id for m in Message.objects.all()}) == 1


def test_reply_without_references_threads_by_subject(alice):
    account = make_account(alice)
    store_message(account, raw("Budget 2027", "s1@x"), "1")
    store_message(account, raw("RE: [team] Budget 2027", "s2@x"), "2")
    store_message(account, raw("Budget 2027", "s3@x"), "3")  # not a reply: its own conversation
    threads_seen = list(Message.objects.order_by("id").values_list("thread_id", flat=True))
    assert threads_seen[0] == threads_seen[1] != threads_seen[2]


def test_conversations_never_cross_users(alice, bob):
    store_message(make_account(alice), raw("Hello", "h@x"), "1")
    store_message(make_account(bob), raw("Re: Hello", "h2@x", in_reply_to="h@x"), "1")
    a, b = Message.objects.order_by("id")
    assert a.thread_id == a.id and b.thread_id == b.id


@pytest.mark.parametrize(
    ("subject", "normal"),
    [("Re: Fwd: AW: Hello", "hello"), ("[list] Re: [list] Hello  world", "hello world"), ("Hello", "hello")],
)
def test_subject_normalization(subject, normal):
    assert threads.normalize_subject(subject) == normal


def test_hostile_references_are_bounded():
    header = " ".join(f"<{i}@x>" for i in range(10_000))
    assert len(threads.references_of(header, "<p@x>")) == threads.MAX_REFERENCES
    assert threads.references_of(header, "<p@x>")[-1] == "p@x"


def test_inbox_lists_each_conversation_once_with_its_size(alice_client, alice):
    from django.urls import reverse

    account = make_account(alice)
    store_message(account, raw("Plan", "a@x", date="Mon, 23 Nov 2026 09:00:00 +0000"), "1")
    store_message(account, raw("Re: Plan", "b@x", in_reply_to="a@x", date="Tue, 24 Nov 2026 09:00:00 +0000"), "2")
    store_message(account, raw("Solo", "c@x", date="Wed, 25 Nov 2026 09:00:00 +0000"), "3")
    grouped = alice_client.get(reverse("mailbox:inbox")).content.decode()
    listed = re.findall(r'<span class="subject" dir="auto">([^<]*)</span>', grouped)
    assert listed == ["Solo", "Re: Plan"]
    assert grouped.count('class="thread-count"') == 1 and 'aria-label="2 messages">2</span>' in grouped
    single = alice_client.get(reverse("mailbox:inbox") + "?view=messages").context["page"].rows
    assert [m.subject for m in single] == ["Solo", "Re: Plan", "Plan"]


def test_conversation_preference_switches_the_default(alice_client, alice):
    from django.urls import reverse

    account = make_account(alice)
    store_message(account, raw("Plan", "a@x"), "1")
    store_message(account, raw("Re: Plan", "b@x", in_reply_to="a@x"), "2")
    alice_client.post(reverse("accounts:preferences"), {"time_zone": ""})  # conversations unchecked
    assert len(alice_client.get(reverse("mailbox:inbox")).context["page"].rows) == 2


def _store_batch(account, items):
    """Store several messages in one batch, as the sync engine does (store.save_messages), then thread them."""
    import hashlib
    from pathlib import Path

    from mailbox import mime, store

    batch = []
    for uidl, data in items:
        with store.temp_file() as fh:
            fh.write(data)
        stored = store.commit_raw(
            Path(fh.name), expected_size=len(data), expected_sha256=hashlib.sha256(data).hexdigest()
        )
        batch.append((uidl, stored, mime.parse_bytes(data)))
    messages = store.save_messages(account, batch)
    threads.assign(messages)
    return messages


def test_batches_thread_with_each_other_and_with_earlier_mail(alice):
    account = make_account(alice)
    store_message(account, raw("Budget", "b0@x"), "1")
    _store_batch(
        account,
        [
            ("2", raw("Re: Budget", "b1@x", in_reply_to="b0@x", references="b0@x")),
            ("3", raw("Lunch", "l0@x")),
            ("4", raw("Re: Lunch", "l1@x", in_reply_to="l0@x", references="l0@x")),
            ("5", raw("Alone", "z0@x")),
        ],
    )
    assert thread_of("Budget") == thread_of("Re: Budget")
    assert thread_of("Lunch") == thread_of("Re: Lunch") != thread_of("Budget")
    alone = Message.objects.get(subject="Alone")
    assert alone.thread_id == alone.id  # its own conversation, as stored
    assert Message.objects.filter(thread_id__isnull=True).count() == 0
