"""Sending end to end against a real SMTP server (aiosmtpd): bytes, threading, forward, retries, Outbox, limits."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.utils import timezone

from accounts.models import Profile
from mailbox import actions, store, sync
from mailbox.models import Folder, Message, ServerState
from outgoing import actions as outgoing_actions
from outgoing import compose, send, tasks
from outgoing.models import OutgoingMessage, OutgoingState
from tests.factories import build_message, store_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(django_capture_on_commit_callbacks, send_enqueued):
    """Queue a draft as the web does; returns the id Celery would get."""

    def run(owner, outgoing) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            outgoing_actions.queue(owner, outgoing.id, delay=0)  # no Undo window: these tests send at once
        assert send_enqueued[-1] == outgoing.id
        return outgoing.id

    return run


def draft(alice, account, **fields) -> OutgoingMessage:
    values = {"to": "Bob <bob@example.net>", "subject": "Hello", "body": "Hi Bob.\n"}
    values.update(fields)
    return send.save_draft(alice, None, account=account, **values)


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_sent_message_reaches_the_server_byte_exact_and_is_filed_in_sent(alice, smtp_account, smtp_server, queue):
    account = smtp_account()
    outgoing = draft(
        alice,
        account,
        to="Bob <bob@example.net>, carol@example.net",
        cc="Dan <dan@example.net>",
        bcc="hidden@example.net",
        subject="Grüße – a test",
        body="Hallo,\r\nzweite Zeile.\r\n",
        add=[("notes.txt", "text/plain", b"plain notes\n")],
    )
    queue(alice, outgoing)
    assert send.deliver(outgoing.id) is send.Outcome.SENT

    [got] = smtp_server.received
    assert got.mail_from == "alice@example.org"
    assert got.rcpt_tos == ["bob@example.net", "carol@example.net", "dan@example.net", "hidden@example.net"]
    assert got.tls and got.mechanism == "PLAIN" and got.login == f"smtp-{account.id}"
    head = got.data.split(b"\r\n\r\n", 1)[0].decode()
    row = OutgoingMessage.objects.get(id=outgoing.id)
    assert head.splitlines()[:7] == [
        "From: Alice Example <alice@example.org>",
        "To: Bob <bob@example.net>, carol@example.net",
        "Cc: Dan <dan@example.net>",
        "Subject: =?utf-8?b?R3LDvMOfZSDigJMgYSB0ZXN0?=",  # RFC 2047: non-ASCII text whole in encoded words
        f"Date: {email.utils.format_datetime(timezone.localtime(row.queued_at).replace(microsecond=0))}",
        f"Message-ID: {row.message_id}",
        "MIME-Version: 1.0",
    ]
    assert b"hidden@example.net" not in got.data

    sent = Message.objects.get(id=row.sent_message_id)
    stored = store.path_of(sent.raw_path).read_bytes()
    assert stored == b"Bcc: hidden@example.net\r\n" + got.data  # what the server got, plus Bcc for the sender
    assert (sent.folder, sent.server_state, sent.seen) == (Folder.SENT, ServerState.GONE, True)
    assert " " in sent.uidl  # no POP3 server can list this UIDL
    assert sent.subject == "Grüße – a test"
    assert sent.message_id == row.message_id
    assert [a.filename for a in sent.attachments.all()] == ["notes.txt"]
    assert (row.state, row.raw, row.attempts, row.error) == (OutgoingState.SENT, None, 1, "")
    assert not row.attachments.exists()  # the Sent copy holds them now
    body = parsed(got.data).get_body(("plain",)).get_content()
    assert body.replace("\r\n", "\n") == "Hallo,\nzweite Zeile.\n"


def test_reply_carries_threading_headers_and_joins_the_conversation(alice, smtp_account, smtp_server, queue):
    account = smtp_account()
    raw = build_message(
        "Plans for Friday",
        "Shall we meet?\n",
        sender="Carol <carol@example.net>",
        to="alice@example.org, Dan <dan@example.net>",
        message_id="<Plan.2@example.net>",
    )
    raw = raw.replace(b"Subject:", b"References: <Plan.1@example.net>\r\nSubject:", 1)
    original = store_message(account, raw, "uidl-1")

    outgoing = send.start_reply(alice, original, OutgoingMessage.Kind.REPLY_ALL)
    assert (outgoing.to, outgoing.cc) == ("Carol <carol@example.net>", "Dan <dan@example.net>")
    assert "> Shall we meet?" in outgoing.body
    queue(alice, outgoing)
    assert send.deliver(outgoing.id) is send.Outcome.SENT

    [got] = smtp_server.received
    message = parsed(got.data)
    assert message["Subject"] == "Re: Plans for Friday"
    assert message["In-Reply-To"] == "<Plan.2@example.net>"
    assert message["References"] == "<Plan.1@example.net> <Plan.2@example.net>"
    assert got.rcpt_tos == ["carol@example.net", "dan@example.net"]  # never alice herself
    sent = Message.objects.get(folder=Folder.SENT)
    original.refresh_from_db()
    assert sent.thread_id == original.thread_id


def test_forward_keeps_the_attachments(alice, smtp_account, smtp_server, queue):
    account = smtp_account()
    pdf = b"%PDF-1.4 \x00\x01\x02 binary \xff" * 100
    raw = build_message(
        "Re: Report",
        "See attached.\n",
        attachments=[("report.pdf", "application/pdf", pdf), ("data.csv", "text/csv", b"a,b\n1,2\n")],
        message_id="<Report@example.net>",
    )
    original = store_message(account, raw, "uidl-2")

    outgoing = send.start_reply(alice, original, OutgoingMessage.Kind.FORWARD)
    assert outgoing.subject == "Fwd: Re: Report"
    assert outgoing.to == ""
    assert [a.filename for a in outgoing.attachments.all()] == ["report.pdf", "data.csv"]
    send.save_draft(
        alice, outgoing, account=account, to="erin@example.net", subject=outgoing.subject, body=outgoing.body
    )
    queue(alice, outgoing)
    assert send.deliver(outgoing.id) is send.Outcome.SENT

    message = parsed(smtp_server.received[0].data)
    files = {a.get_filename(): (a.get_content_type(), a.get_payload(decode=True), a["Content-Transfer-Encoding"])
             for a in message.iter_attachments()}  # fmt: skip
    assert files == {
        "report.pdf": ("application/pdf", pdf, "base64"),
        "data.csv": ("text/csv", b"a,b\n1,2\n", "base64"),
    }
    assert message["References"] == "<Report@example.net>"
    assert message["In-Reply-To"] is None
    assert "---------- Forwarded message ----------" in message.get_body(("plain",)).get_content()


def test_header_injection_is_refused_and_nothing_is_sent(alice, smtp_account, smtp_server, send_enqueued):
    account = smtp_account()
    outgoing = draft(alice, account, to="bob@example.net\r\nBcc: victim@example.com")
    with pytest.raises(compose.ComposeError):
        outgoing_actions.queue(alice, outgoing.id)
    row = OutgoingMessage.objects.get(id=outgoing.id)
    assert row.state == OutgoingState.DRAFT and row.to == "bob@example.net\r\nBcc: victim@example.com"  # kept, to fix
    assert send.deliver(outgoing.id) is send.Outcome.SKIPPED
    assert send_enqueued == [] and smtp_server.received == []


def test_temporary_failure_is_retried_by_the_sweep_from_the_row(
    alice, smtp_account, smtp_server, queue, monkeypatch, send_enqueued
):
    account = smtp_account()
    outgoing = draft(alice, account)
    queue(alice, outgoing)
    smtp_server.fail("rcpt", 451, "4.7.1 Greylisted, try again later")
    waits = []
    monkeypatch.setattr(send, "backoff", lambda retries: waits.append(retries) or 0)

    assert tasks.send_outgoing.apply(args=[outgoing.id]).get() == "retry"
    row = OutgoingMessage.objects.get(id=outgoing.id)
    assert (row.state, row.attempts, waits) == (OutgoingState.QUEUED, 1, [0])
    assert row.next_attempt_at > row.enqueued_at  # a new try, which no task was published for yet

    send_enqueued.clear()
    assert tasks.dispatch_due_sends.apply().get() == 1
    assert send_enqueued == [outgoing.id]
    assert tasks.dispatch_due_sends.apply().get() == 0  # published once per try
    assert tasks.send_outgoing.apply(args=[outgoing.id]).get() == "sent"
    row.refresh_from_db()
    assert (row.state, row.attempts) == (OutgoingState.SENT, 2)
    assert len(smtp_server.received) == 1


def test_retries_back_off_on_the_row_and_wait_until_due(alice, smtp_account, smtp_server, queue):
    account = smtp_account()
    outgoing = draft(alice, account)
    queue(alice, outgoing)
    smtp_server.fail("mail", 421, "4.3.2 Try later", times=3)
    waits = []
    for _try in range(3):
        before = timezone.now()
        assert send.deliver(outgoing.id) is send.Outcome.RETRY
        row = OutgoingMessage.objects.get(id=outgoing.id)
        waits.append((row.next_attempt_at - before).total_seconds())
        assert send.deliver(outgoing.id) is send.Outcome.SKIPPED  # not before its time, whoever asks
        assert send.dispatch_due() == []
        assert send.dispatch_due(now=row.next_attempt_at) == [outgoing.id]
        OutgoingMessage.objects.filter(id=outgoing.id).update(next_attempt_at=timezone.now())  # time passes
    assert [60 <= waits[0] < 76, 120 <= waits[1] < 151, 240 <= waits[2] < 301] == [True, True, True]
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    assert OutgoingMessage.objects.get(id=outgoing.id).attempts == 4


def test_temporary_failure_waits_in_the_queue_with_the_server_answer(alice, smtp_account, smtp_server, queue):
    account = smtp_account()
    outgoing = draft(alice, account)
    queue(alice, outgoing)
    smtp_server.fail("data", 452, "4.3.1 Insufficient system storage")
    assert send.deliver(outgoing.id) is send.Outcome.RETRY
    row = OutgoingMessage.objects.get(id=outgoing.id)
    assert row.state == OutgoingState.QUEUED
    assert "452 4.3.1 Insufficient system storage" in row.error
    assert row.error_class == "temporary"
    first_id = row.message_id
    OutgoingMessage.objects.filter(id=outgoing.id).update(next_attempt_at=timezone.now())
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    assert parsed(smtp_server.received[0].data)["Message-ID"] == first_id  # the same message, not a new one


def test_last_retry_puts_the_message_in_the_outbox(alice, smtp_account, smtp_server, queue):
    account = smtp_account()
    outgoing = draft(alice, account)
    queue(alice, outgoing)
    OutgoingMessage.objects.filter(id=outgoing.id).update(attempts=send.MAX_ATTEMPTS - 1)
    smtp_server.fail("mail", 421, "4.3.2 Service shutting down", times=5)
    result = tasks.send_outgoing.apply(args=[outgoing.id])
    assert result.get() == "failed"
    row = OutgoingMessage.objects.get(id=outgoing.id)
    assert (row.state, row.attempts, row.next_attempt_at) == (OutgoingState.FAILED, send.MAX_ATTEMPTS, None)
    assert "421 4.3.2 Service shutting down" in row.error
    assert send.dispatch_due() == []


def test_permanent_failure_lands_in_the_outbox_and_can_be_retried(
    alice, smtp_account, smtp_server, queue, alice_client
):
    account = smtp_account()
    outgoing = draft(alice, account, subject="Rejected one")
    queue(alice, outgoing)
    smtp_server.fail("data", 554, "5.7.1 Message refused by policy")
    assert send.deliver(outgoing.id) is send.Outcome.FAILED
    row = OutgoingMessage.objects.get(id=outgoing.id)
    assert row.state == OutgoingState.FAILED and row.error_class == "permanent"
    assert "554 5.7.1 Message refused by policy" in row.error
    assert smtp_server.sessions[-1][-2:] == ["RSET", "QUIT"]  # the session ended politely
    assert send.deliver(outgoing.id) is send.Outcome.SKIPPED  # no retry on its own

    page = alice_client.get("/compose/outbox/").content.decode()
    assert "Rejected one" in page and "554 5.7.1 Message refused by policy" in page

    queue(alice, row)  # the Outbox's Retry
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    assert len(smtp_server.received) == 1


def test_wrong_password_is_permanent_and_says_so(alice, smtp_account, smtp_server, queue):
    account = smtp_account(password="right")
    smtp_server.add_user(f"smtp-{account.id}", "changed-on-the-server")
    outgoing = draft(alice, account)
    queue(alice, outgoing)
    assert send.deliver(outgoing.id) is send.Outcome.FAILED
    row = OutgoingMessage.objects.get(id=outgoing.id)
    assert row.error_class == "auth" and "535" in row.error
    assert smtp_server.sessions[-1][-2:] == ["AUTH", "QUIT"]


def test_a_message_is_claimed_and_sent_once(alice, smtp_account, smtp_server, queue):
    account = smtp_account()
    outgoing = draft(alice, account)
    queue(alice, outgoing)
    assert send._claim(outgoing.id)
    assert not send._claim(outgoing.id)  # a second worker gets nothing
    assert send.deliver(outgoing.id) is send.Outcome.SKIPPED
    # A worker that died mid-send: after the lease another may send it.
    OutgoingMessage.objects.filter(id=outgoing.id).update(claimed_at=timezone.now() - send.CLAIM_LEASE * 2)
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    assert send.deliver(outgoing.id) is send.Outcome.SKIPPED
    assert len(smtp_server.received) == 1


def test_a_queued_message_can_no_longer_be_edited_or_discarded(alice, smtp_account, queue):
    account = smtp_account()
    outgoing = draft(alice, account)
    queue(alice, outgoing)
    with pytest.raises(send.SendRefused):
        send.save_draft(alice, outgoing, account=account, to="other@example.net")
    assert not send.discard(alice, outgoing.id)
    assert OutgoingMessage.objects.get(id=outgoing.id).to == "Bob <bob@example.net>"


def test_rate_limit_per_user_refuses_and_keeps_the_draft(alice, bob, smtp_account, queue, settings):
    settings.WEBPOP_SEND_RATE_PER_HOUR = 2
    account = smtp_account()
    queue(alice, draft(alice, account))
    queue(alice, draft(alice, account))  # queued ones count too
    third = draft(alice, account)
    with pytest.raises(send.SendRefused, match="limit of 2 messages per hour"):
        outgoing_actions.queue(alice, third.id)
    assert OutgoingMessage.objects.get(id=third.id).state == OutgoingState.DRAFT

    Profile.objects.update_or_create(user=alice, defaults={"send_rate_per_hour": 3})  # the admin's quota
    queue(alice, third)
    # Sent more than an hour ago no longer counts.
    OutgoingMessage.objects.filter(owner=alice).update(
        state=OutgoingState.SENT, sent_at=timezone.now() - timezone.timedelta(minutes=61)
    )
    assert send.sent_in_last_hour(alice.id) == 0
    assert send.limit_per_hour(bob.id) == 2


def test_size_limits(alice, smtp_account, settings):
    account = smtp_account()
    settings.WEBPOP_MAX_SEND_BYTES = 4000
    with pytest.raises(send.SendRefused, match="too large"):
        draft(alice, account, add=[("big.bin", "application/octet-stream", b"x" * 3500)])
    kept = draft(alice, account, add=[("a.bin", "application/octet-stream", b"a" * 2000)])
    swap = kept.attachments.get().id
    send.save_draft(
        alice, kept, account=account, add=[("b.bin", "application/octet-stream", b"b" * 2000)], remove=[swap]
    )
    assert [a.filename for a in kept.attachments.all()] == ["b.bin"]  # the one removed does not count
    outgoing = draft(alice, account, body="long line of text " * 300)
    with pytest.raises(send.SendRefused, match="at most 4,000 bytes"):
        outgoing_actions.queue(alice, outgoing.id)
    assert OutgoingMessage.objects.get(id=outgoing.id).state == OutgoingState.DRAFT


@pytest.mark.dovecot
def test_sync_never_deletes_or_reconciles_sent_mail(alice, pop_user, dovecot_account, smtp_account, smtp_server, queue):
    pop_user.deliver(build_message("From the server", "x", message_id="<srv@example.net>"))
    account = smtp_account(dovecot_account(policy="delete"))
    outgoing = draft(alice, account)
    queue(alice, outgoing)
    assert send.deliver(outgoing.id) is send.Outcome.SENT

    result = sync.sync_account(account.id)
    assert result.error is None, result.error
    assert result.fetched == 1 and result.deleted_on_server == 1
    sent = Message.objects.get(folder=Folder.SENT)
    assert sent.server_state == ServerState.GONE
    assert sync.sync_account(account.id).error is None
    assert Message.objects.filter(id=sent.id, folder=Folder.SENT).exists()

    # Deleted for good from the trash: a local-only message leaves no tombstone.
    actions.move(alice.id, [sent.id], Folder.TRASH)
    assert actions.empty_trash(alice.id) == 1
    assert not Message.objects.filter(id=sent.id).exists()


def test_sent_mail_is_listed_searchable_and_a_delete_can_be_undone(alice, alice_client, smtp_account, queue):
    account = smtp_account()
    outgoing = draft(alice, account, subject="Quarterly figures", body="The zebracorn numbers are in.")
    queue(alice, outgoing)
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    sent = Message.objects.get(folder=Folder.SENT)

    assert "Quarterly figures" in alice_client.get("/folder/sent/").content.decode()
    assert "Quarterly figures" in alice_client.get("/", {"q": "zebracorn"}).content.decode()
    assert "Quarterly figures" not in alice_client.get("/").content.decode()  # not in the Inbox

    previous = actions.move(alice.id, [sent.id], Folder.TRASH)
    assert actions.restore(alice.id, previous) == 1
    assert Message.objects.get(id=sent.id).folder == Folder.SENT


def test_lost_tasks_and_dead_workers_are_found_from_the_rows(alice, smtp_account, smtp_server, queue, send_enqueued):
    account = smtp_account()
    drafts = (draft(alice, account, subject=s) for s in ("lost", "dead", "wait", "hopeless", "later"))
    lost, dead_worker, waiting, hopeless, later = drafts
    for outgoing in (lost, dead_worker, waiting, hopeless, later):
        queue(alice, outgoing)
    now = timezone.now()
    # Its task was published (when queued) but never ran: a broker lost it, or a worker died holding it.
    OutgoingMessage.objects.filter(id=lost.id).update(enqueued_at=now - send.REDISPATCH_AFTER * 2)
    OutgoingMessage.objects.filter(id=dead_worker.id).update(
        state=OutgoingState.SENDING, claimed_at=now - send.CLAIM_LEASE * 2, attempts=1
    )
    OutgoingMessage.objects.filter(id=hopeless.id).update(
        state=OutgoingState.SENDING, claimed_at=now - send.CLAIM_LEASE * 2, attempts=send.MAX_ATTEMPTS
    )
    OutgoingMessage.objects.filter(id=later.id).update(next_attempt_at=now + timezone.timedelta(minutes=5))
    send_enqueued.clear()

    assert tasks.dispatch_due_sends.apply().get() == 2
    assert sorted(send_enqueued) == sorted([lost.id, dead_worker.id])
    assert OutgoingMessage.objects.get(id=dead_worker.id).state == OutgoingState.QUEUED
    assert OutgoingMessage.objects.get(id=hopeless.id).state == OutgoingState.FAILED
    assert OutgoingMessage.objects.get(id=waiting.id).state == OutgoingState.QUEUED  # its task is on its way
    assert send.dispatch_due() == []  # published: not again at the next tick
    overdue = send.dispatch_due(now=now + send.REDISPATCH_AFTER * 2)  # as if none of them had started by then
    assert sorted(overdue) == sorted([lost.id, dead_worker.id, waiting.id, later.id])
    for outgoing_id in send_enqueued:
        assert send.deliver(outgoing_id) is send.Outcome.SENT
    assert len(smtp_server.received) == 2


def test_a_sent_message_that_cannot_be_filed_is_never_sent_again(alice, smtp_account, smtp_server, queue, monkeypatch):
    account = smtp_account()
    outgoing = draft(alice, account)
    queue(alice, outgoing)

    def broken_store(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(send, "file_sent", broken_store)
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    row = OutgoingMessage.objects.get(id=outgoing.id)
    assert (row.state, row.error_class) == (OutgoingState.SENT, "not_filed")
    assert row.raw is not None  # the bytes are kept
    assert send.deliver(outgoing.id) is send.Outcome.SKIPPED
    assert send.dispatch_due() == []
    assert len(smtp_server.received) == 1


def test_reply_to_mail_of_an_account_that_cannot_send_uses_one_that_can(alice, smtp_account):
    from tests.factories import make_account

    receive_only = make_account(alice, username="old@example.net")
    sender = smtp_account(signature="Alice")
    message = store_message(receive_only, build_message("Old address", "hi", message_id="<o@example.net>"), "u1")
    outgoing = send.start_reply(alice, message, OutgoingMessage.Kind.REPLY)
    assert outgoing.account_id == sender.id
    assert "-- \nAlice\n" in outgoing.body
    assert outgoing.source_id == message.id
