"""One draft per message being written, titles, Undo send on the row, and what a reply carries."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Profile
from outgoing import actions as outgoing_actions
from outgoing import compose, send
from outgoing.models import OutgoingMessage, OutgoingState
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


def compose_data(account, **overrides) -> dict:
    data = {"account": account.id, "to": "bob@example.net", "cc": "", "bcc": "", "subject": "Hi", "body": "Hello."}
    data.update(overrides)
    return data


def drafts_page(client) -> str:
    return client.get(reverse("outgoing:drafts")).content.decode()


def queue_now(owner, outgoing_id, capture, delay=None):
    with capture(execute=True):
        return outgoing_actions.queue(owner, outgoing_id, delay=delay)


# --- One draft per message being written ---------------------------------------------------


def test_reply_pressed_again_resubmitted_or_from_a_second_tab_reopens_one_draft(alice, alice_client, smtp_account):
    account = smtp_account()
    message = store_message(account, build_message("Question", "What time?", message_id="<q@example.net>"), "u1")
    url = reverse("outgoing:reply", args=[message.id])
    first = alice_client.post(url, {"kind": "reply"})
    draft = OutgoingMessage.objects.get(owner=alice)
    alice_client.post(draft_url := reverse("outgoing:edit", args=[draft.id]), compose_data(account, body="Typed."))
    second_tab = Client()
    second_tab.force_login(alice)
    answers = [alice_client.post(url, {"kind": "reply"}), second_tab.post(url, {"kind": "reply"})]
    assert {first["Location"], *(a["Location"] for a in answers)} == {draft_url}
    assert OutgoingMessage.objects.filter(owner=alice).count() == 1
    assert OutgoingMessage.objects.get(id=draft.id).body == "Typed."  # reopened, not rebuilt
    # Forward is another message being written: its own draft, also only one.
    alice_client.post(url, {"kind": "forward"})
    alice_client.post(url, {"kind": "forward"})
    assert sorted(OutgoingMessage.objects.values_list("kind", flat=True)) == ["forward", "reply"]


def test_a_sent_reply_leaves_no_draft_and_the_next_reply_is_new(
    alice, alice_client, smtp_account, smtp_server, django_capture_on_commit_callbacks
):
    account = smtp_account()
    message = store_message(account, build_message("Question", "What time?"), "u1")
    url = reverse("outgoing:reply", args=[message.id])
    alice_client.post(url, {"kind": "reply"})
    draft = OutgoingMessage.objects.get(owner=alice)
    assert f'id="outgoing-{draft.id}"' in drafts_page(alice_client)
    queue_now(alice, draft.id, django_capture_on_commit_callbacks, delay=0)
    assert send.deliver(draft.id) is send.Outcome.SENT
    assert f'id="outgoing-{draft.id}"' not in drafts_page(alice_client) and "No drafts." in drafts_page(alice_client)
    alice_client.post(url, {"kind": "reply"})
    assert OutgoingMessage.objects.filter(owner=alice, state=OutgoingState.DRAFT).exclude(id=draft.id).count() == 1


def test_autosave_and_send_of_one_new_message_page_make_one_message(
    alice, alice_client, smtp_account, send_enqueued, django_capture_on_commit_callbacks
):
    account = smtp_account()
    page = alice_client.get(reverse("outgoing:compose")).content.decode()
    key = page.split('name="compose_key" value="', 1)[1].split('"', 1)[0]
    assert len(key) == 32
    # The autosave's answer has not come back when Send is pressed: both post to /compose/ with the page's key.
    saved = alice_client.post(reverse("outgoing:compose"), compose_data(account, compose_key=key, action="autosave"))
    with django_capture_on_commit_callbacks(execute=True):
        sent = alice_client.post(reverse("outgoing:compose"), compose_data(account, compose_key=key, action="send"))
    assert saved.status_code == 200 and sent.status_code == 302
    row = OutgoingMessage.objects.get(owner=alice)
    assert row.state == OutgoingState.QUEUED and send_enqueued == [row.id]
    # A late autosave of the same page changes nothing and makes no new draft.
    late = alice_client.post(reverse("outgoing:compose"), compose_data(account, compose_key=key, action="autosave"))
    assert late.status_code == 400 and OutgoingMessage.objects.filter(owner=alice).count() == 1
    # Another page is another message.
    other = alice_client.get(reverse("outgoing:compose")).content.decode()
    assert key not in other


def test_a_key_of_someone_elses_page_reaches_nothing_of_theirs(alice, bob, alice_client, smtp_account):
    account = smtp_account()
    key = "ab" * 16
    send.save_draft(alice, None, account=account, to="x@example.net", body="Alice's", compose_key=key)
    bob_account = smtp_account(make_account(bob, username="bob@example.org"))
    bob_client = Client()
    bob_client.force_login(bob)
    bob_client.post(reverse("outgoing:compose"), compose_data(bob_account, compose_key=key, action="save"))
    assert OutgoingMessage.objects.get(owner=alice).body == "Alice's"
    assert OutgoingMessage.objects.filter(owner=bob).count() == 1


@pytest.mark.parametrize(
    ("kind", "title", "german"),
    [
        ("reply", "Reply", "Antworten"),
        ("reply_all", "Reply all", "Allen antworten"),
        ("forward", "Forward", "Weiterleiten"),
    ],
)
def test_the_editor_is_titled_by_what_is_written(alice, alice_client, smtp_account, kind, title, german):
    account = smtp_account()
    message = store_message(account, build_message("Question", "What time?"), "u1")
    response = alice_client.post(reverse("outgoing:reply", args=[message.id]), {"kind": kind}, follow=True)
    page = response.content.decode()
    assert f"<h1>{title}</h1>" in page and "Edit draft" not in page
    new = alice_client.get(reverse("outgoing:compose")).content.decode()
    assert "<h1>New message</h1>" in new
    if german:  # the same page in German
        alice_client.cookies["django_language"] = "de"
        page = alice_client.get(response.redirect_chain[-1][0]).content.decode()
        assert f"<h1>{german}</h1>" in page


def test_a_signature_that_starts_with_the_separator_gets_no_second_one(alice, alice_client, smtp_account):
    for signature in ("-- \nAlice\nexample.org", "--\nAlice\nexample.org", "Alice\nexample.org"):
        assert compose.signature_block(signature) == "-- \nAlice\nexample.org\n\n"
    account = smtp_account(signature="-- \r\nAlice")
    page = alice_client.get(reverse("outgoing:compose")).content.decode()
    assert page.count("-- \nAlice") + page.count("-- \r\nAlice") == 1 and "-- \n-- " not in page
    message = store_message(account, build_message("Q", "x"), "u1")
    draft = send.start_reply(alice, message, OutgoingMessage.Kind.REPLY)
    assert draft.body.count("-- ") == 1


# --- Undo send ---------------------------------------------------------------------------------


def test_undo_within_the_window_returns_the_draft_and_nothing_is_sent(
    alice, alice_client, smtp_account, smtp_server, send_enqueued, django_capture_on_commit_callbacks
):
    account = smtp_account()
    Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 20})
    outgoing = send.save_draft(alice, None, account=account, to="bob@example.net", subject="Oops", body="Not yet.\n")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("outgoing:edit", args=[outgoing.id]),
            compose_data(account, subject="Oops", body="Not yet.\n", action="send"),
            follow=True,
        )
    row = OutgoingMessage.objects.get(id=outgoing.id)
    assert row.state == OutgoingState.QUEUED and send_enqueued == [outgoing.id]
    assert dt.timedelta(seconds=19) < row.next_attempt_at - row.queued_at <= dt.timedelta(seconds=20)
    page = response.content.decode()
    assert "Sending in 20 seconds." in page and reverse("outgoing:undo", args=[outgoing.id]) in page
    assert send.deliver(outgoing.id) is send.Outcome.EARLY  # the task, arriving early, sends nothing
    assert send.dispatch_due() == []  # nor does beat's sweep
    back = alice_client.post(reverse("outgoing:undo", args=[outgoing.id]), follow=True)
    assert back.redirect_chain[-1][0] == reverse("outgoing:edit", args=[outgoing.id])
    page = back.content.decode()
    assert "Sending undone." in page and "Not yet." in page and 'value="Oops"' in page
    row.refresh_from_db()
    assert row.state == OutgoingState.DRAFT and row.raw is None and row.next_attempt_at is None
    assert send.deliver(outgoing.id) is send.Outcome.SKIPPED
    assert smtp_server.received == []


def test_undo_after_the_claim_is_too_late_and_a_claim_after_undo_sends_nothing(
    alice, alice_client, smtp_account, smtp_server, send_enqueued, django_capture_on_commit_callbacks
):
    account = smtp_account()
    gone = send.save_draft(alice, None, account=account, to="bob@example.net", subject="Gone")
    queue_now(alice, gone.id, django_capture_on_commit_callbacks, delay=5)
    # The window ends (as if 5 s had passed): the worker claims it; Undo then changes nothing.
    OutgoingMessage.objects.filter(id=gone.id).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    assert send.deliver(gone.id) is send.Outcome.SENT
    response = alice_client.post(reverse("outgoing:undo", args=[gone.id]), follow=True)
    assert "Too late to undo: the message has already been sent." in response.content.decode()
    assert OutgoingMessage.objects.get(id=gone.id).state == OutgoingState.SENT
    kept = send.save_draft(alice, None, account=account, to="bob@example.net", subject="Kept")
    queue_now(alice, kept.id, django_capture_on_commit_callbacks, delay=5)
    assert outgoing_actions.undo(alice, kept.id)
    OutgoingMessage.objects.filter(id=kept.id).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    assert send.deliver(kept.id) is send.Outcome.SKIPPED
    assert [_subject(got) for got in smtp_server.received] == ["Gone"]


def _subject(received) -> str:
    return str(email.message_from_bytes(received.data, policy=email.policy.default)["Subject"])


def test_undo_off_sends_at_once_and_the_preference_is_saved(
    alice, alice_client, smtp_account, send_enqueued, django_capture_on_commit_callbacks
):
    account = smtp_account()
    assert send.undo_seconds(alice.id) == 10  # the default, before any preference is saved
    page = alice_client.get(reverse("accounts:preferences")).content.decode()
    assert 'name="undo_send_seconds"' in page and '<option value="10" selected>' in page
    alice_client.post(reverse("accounts:preferences"), {"time_zone": "", "conversations": "on", "undo_send_seconds": 0})
    assert Profile.objects.get(user=alice).undo_send_seconds == 0
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("outgoing:compose"), compose_data(account, action="send"), follow=True)
    row = OutgoingMessage.objects.get(owner=alice)
    assert row.next_attempt_at <= timezone.now() and "Your message is being sent." in response.content.decode()
    assert reverse("outgoing:undo", args=[row.id]) not in response.content.decode()
    bad = alice_client.post(reverse("accounts:preferences"), {"time_zone": "", "undo_send_seconds": 7})
    assert bad.status_code == 200 and Profile.objects.get(user=alice).undo_send_seconds == 0


def test_a_lost_task_is_published_again_by_the_sweep_only_after_the_window(
    alice, smtp_account, send_enqueued, django_capture_on_commit_callbacks
):
    account = smtp_account()
    outgoing = send.save_draft(alice, None, account=account, to="bob@example.net")
    row = queue_now(alice, outgoing.id, django_capture_on_commit_callbacks, delay=10)
    assert send.dispatch_due(now=row.next_attempt_at - dt.timedelta(seconds=1)) == []
    assert send.dispatch_due(now=row.next_attempt_at + dt.timedelta(seconds=1)) == []  # its task is on its way
    lost = row.next_attempt_at + send.REDISPATCH_AFTER + dt.timedelta(seconds=1)
    assert send.dispatch_due(now=lost) == [outgoing.id]


# --- What a reply carries -------------------------------------------------------------------------


def test_reply_all_leaves_out_every_address_of_the_user(alice, smtp_account):
    account = smtp_account()  # alice@example.org, sending as herself
    smtp_account(
        make_account(alice, username="al@work.example", host="pop.work.example"), from_email="alice.smith@work.example"
    )
    raw = build_message(
        "Plans",
        "Shall we?",
        sender="Carol <carol@example.net>",
        to="alice@example.org, Dan <dan@example.net>, ALICE.SMITH@work.example",
    ).replace(b"Subject:", b"Cc: al@work.example, Erin <erin@example.net>\r\nSubject:", 1)
    message = store_message(account, raw, "u1")
    draft = send.start_reply(alice, message, OutgoingMessage.Kind.REPLY_ALL)
    assert draft.to == "Carol <carol@example.net>"
    assert draft.cc == "Dan <dan@example.net>, Erin <erin@example.net>"


def test_the_quote_header_is_in_the_users_language_and_time_zone(alice, alice_client, smtp_account):
    account = smtp_account()
    raw = build_message(
        "Hallo", "Wie geht's?", sender="Carol <carol@example.net>", date="Thu, 26 Nov 2026 23:30:00 +0000"
    )
    message = store_message(account, raw, "u1")
    alice_client.post(reverse("accounts:preferences"), {"time_zone": "Europe/Berlin", "conversations": "on"})
    alice_client.cookies["django_language"] = "de"
    alice_client.post(reverse("outgoing:reply", args=[message.id]), {"kind": "reply"})
    body = OutgoingMessage.objects.get(owner=alice).body
    assert "Am Fr, 27. Nov 2026 um 00:30 schrieb Carol <carol@example.net>:\n> Wie geht's?" in body


def test_references_are_the_parents_plus_its_id_bounded(alice, smtp_account):
    account = smtp_account()
    chain = " ".join(f"<r{i}@example.net>" for i in range(30))
    raw = build_message("Long thread", "x", message_id="<parent@example.net>").replace(
        b"Subject:", f"References: {chain}\r\nSubject:".encode(), 1
    )
    draft = send.start_reply(alice, store_message(account, raw, "u1"), OutgoingMessage.Kind.REPLY)
    refs = draft.references.split()
    assert draft.in_reply_to == "<parent@example.net>"
    assert len(refs) == compose.MAX_REFERENCES and refs[0] == "<r0@example.net>"
    assert refs[-2:] == ["<r29@example.net>", "<parent@example.net>"]
    bare = store_message(account, build_message("No id", "x").replace(b"Message-ID:", b"X-Old-Id:"), "u2")
    assert send.start_reply(alice, bare, OutgoingMessage.Kind.REPLY).in_reply_to == ""


def test_forwarding_keeps_the_attachments(
    alice, smtp_account, smtp_server, send_enqueued, django_capture_on_commit_callbacks
):
    account = smtp_account()
    raw = build_message("Report", "See attached.", attachments=[("report.pdf", "application/pdf", b"%PDF-1.4 data")])
    draft = send.start_reply(alice, store_message(account, raw, "u1"), OutgoingMessage.Kind.FORWARD)
    OutgoingMessage.objects.filter(id=draft.id).update(to="bob@example.net")
    queue_now(alice, draft.id, django_capture_on_commit_callbacks, delay=0)
    assert send.deliver(draft.id) is send.Outcome.SENT
    received = email.message_from_bytes(smtp_server.received[0].data, policy=email.policy.default)
    files = [(part.get_filename(), part.get_content()) for part in received.iter_attachments()]
    assert files == [("report.pdf", b"%PDF-1.4 data")]
