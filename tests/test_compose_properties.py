"""Property tests: no compose field, typed or taken from received mail, can make sending fail with an exception.

Every value is drawn from text rich in what breaks mail: each character ``str.splitlines``
splits at, every control (Cc), format (Cf), separator (Zl, Zp) and surrogate (Cs)
character, mixed with letters, marks, symbols and spaces of any script. Whatever comes
in, each field gives a clear form error or a normalised value, and the message built
parses back (with webpop's own parser and Python's) to exactly the normalised values.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import os
import re
from email.message import EmailMessage

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from accounts.models import Profile
from mailbox import mime
from outgoing import actions as outgoing_actions
from outgoing import compose, send, text
from outgoing.compose import ComposeError
from outgoing.models import OutgoingMessage, OutgoingState, SmtpSettings
from tests.factories import store_message

LINE_BREAKS = list(text.LINE_BREAKS)


def _chars(*, surrogates: bool) -> st.SearchStrategy[str]:
    unusual = ["Cc", "Cf", "Zl", "Zp", *(["Cs"] if surrogates else [])]
    return st.one_of(
        st.sampled_from(LINE_BREAKS),
        st.characters(categories=unusual),
        st.characters(categories=["L", "M", "N", "P", "S", "Zs"]),
        st.sampled_from("ab <>@,;:\"'\\=?"),
    )


nasty = st.text(_chars(surrogates=True), max_size=30)
# What an HTTP request can carry: no lone surrogates (a browser cannot encode them; Django decodes
# invalid bytes to U+FFFD) and, in a multipart file name, no CR, LF or double quote, and no folder.
web_nasty = st.text(_chars(surrogates=False), max_size=30)
web_file_names = web_nasty.map(lambda name: re.sub(r'[\r\n"/\\]', "", name)).filter(lambda n: n not in {"", ".", ".."})
addresses = st.sampled_from(["bob@example.net", "carol@example.org", "dan@bücher.example", "e.f+tag@example.com"])
# Half of the names already one line (so that most messages get built), half anything.
recipients = st.lists(st.tuples(st.one_of(nasty, nasty.map(text.one_line)), addresses), max_size=3)
web_recipients = st.lists(st.tuples(st.one_of(web_nasty, web_nasty.map(text.one_line)), addresses), max_size=3)
attachments = st.lists(st.tuples(nasty, nasty, st.binary(max_size=64)), max_size=3)

PROFILE = settings(
    max_examples=int(os.environ.get("WEBPOP_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# Through the web each example is a request with database writes: fewer of them.
WEB_PROFILE = settings(PROFILE, max_examples=max(20, PROFILE.max_examples // 3))
UTC = dt.UTC


def address_field(entries: list[tuple[str, str]]) -> str:
    """Recipients as someone might type them, names quoted or not."""
    return ", ".join(
        f"{name} <{address}>" if n % 2 else f'"{name}" <{address}>' for n, (name, address) in enumerate(entries)
    )


def header(raw: bytes, name: str) -> str | None:
    """A header of the built message, unfolded (CRLF removed, as RFC 5322 says)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    found = [line for line in re.split(r"\r\n(?![ \t])", head) if line.lower().startswith(name.lower() + ":")]
    assert len(found) <= 1, f"{name} twice"
    return found[0].split(":", 1)[1].replace("\r\n", "").strip() if found else None


def check_message(raw: bytes, draft: compose.Draft) -> None:
    """``raw`` is well-formed mail and says exactly what ``draft`` (already normalised) holds."""
    assert raw.isascii()
    assert b"\r" not in raw.replace(b"\r\n", b"") and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # RFC 5322: SMTP servers refuse longer lines
    for name in ("Subject", "From", "To", "Cc", "Bcc", "Date", "Message-ID", "In-Reply-To", "References"):
        header(raw, name)  # never twice: nothing was injected
    assert header(raw, "Bcc") is None

    # Normalised values are fixed points: nothing is left to normalise.
    assert text.one_line(draft.subject) == draft.subject and text.one_line(draft.from_name) == draft.from_name
    assert all(text.one_line(m.name) == m.name for m in [*draft.to, *draft.cc, *draft.bcc])

    parsed = mime.parse_bytes(raw)  # webpop's parser: what the Sent folder shows
    assert parsed.subject == draft.subject
    assert (parsed.from_name, parsed.from_email) == (draft.from_name, draft.from_email)
    for name, mailboxes in (("To", draft.to), ("Cc", draft.cc)):
        value = header(raw, name)
        got = [pair for _group, entries in mime.parse_addresses(value or "") for _w, pair in entries]
        if name == "To" and not draft.to and not draft.cc:
            assert value == "undisclosed-recipients:;"
            continue
        assert got == [(m.name, m.address) for m in mailboxes]
    assert parsed.in_reply_to == draft.in_reply_to
    assert [a.filename for a in parsed.attachments] == [name for name, _t, _d in draft.attachments]
    assert [a.data for a in parsed.attachments] == [data for _n, _t, data in draft.attachments]
    expected_body = draft.body if draft.body.endswith("\n") else draft.body + "\n"
    assert parsed.text_body.rstrip("\n") == expected_body.rstrip("\n")

    # Python's parser agrees on the unstructured parts and on who gets the message. (Display names are
    # left out: it puts a space between adjacent encoded words in a phrase, which RFC 2047 says to ignore.)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert str(message["Subject"]) == draft.subject
    for name, mailboxes in (("To", draft.to), ("Cc", draft.cc)):
        if mailboxes:
            assert [a.addr_spec for a in message[name].addresses] == [m.address for m in mailboxes]
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == expected_body
    assert [part.get_filename() for part in message.iter_attachments()] == [n for n, _t, _d in draft.attachments]


def test_the_line_breaks_are_exactly_those_splitlines_knows():
    breakers = [c for c in map(chr, range(0x110000)) if len(f"a{c}b".splitlines()) > 1]
    assert sorted(LINE_BREAKS) == breakers


def build(draft: compose.Draft) -> bytes:
    return compose.build(draft, message_id="<prop@example.org>", date=dt.datetime(2026, 3, 4, 5, 6, tzinfo=UTC))


@PROFILE
@given(
    subject=nasty,
    from_name=nasty,
    to=recipients,
    cc=recipients,
    bcc=recipients,
    body=nasty,
    in_reply_to=nasty,
    references=nasty,
    files=attachments,
)
def test_every_field_gives_a_clear_error_or_a_message_that_parses_back(
    subject, from_name, to, cc, bcc, body, in_reply_to, references, files
):
    try:
        draft = compose.validate(
            from_name=from_name,
            from_email="alice@example.org",
            to=address_field(to) or "fallback@example.net",
            cc=address_field(cc),
            bcc=address_field(bcc),
            subject=subject,
            body=body,
            in_reply_to=f"<parent@example.org>{in_reply_to}",
            references=f"{references} <root@example.org>",
            attachments=files,
        )
    except ComposeError as exc:
        # Only a structured field may refuse, and it says which.
        assert exc.field in {"to", "cc", "bcc"}
        assert str(exc)
        event(f"refused: {exc.field}")
        return
    event("built")
    assert draft.subject == text.one_line(subject)
    assert draft.from_name == text.one_line(from_name)
    assert draft.body == text.body(body)
    assert draft.in_reply_to == "<parent@example.org>"
    assert draft.references.endswith("<root@example.org>")
    check_message(build(draft), draft)


@pytest.mark.parametrize("breaker", LINE_BREAKS)
def test_each_line_break_in_every_free_text_field_becomes_a_space(breaker):
    draft = compose.validate(
        from_name=f"Ali{breaker}ce",
        from_email="alice@example.org",
        to="Bob <bob@example.net>",
        cc="",
        bcc="",
        subject=f"Hello{breaker}there",
        body=f"one{breaker}two",
        attachments=[(f"notes{breaker}v2.txt", "text/plain", b"x")],
    )
    assert (draft.subject, draft.from_name) == ("Hello there", "Ali ce")
    assert draft.attachments[0][0] == "notes v2.txt"
    check_message(build(draft), draft)


@PROFILE
@given(
    from_name=nasty,
    subject=nasty,
    message_id=nasty,
    references=nasty,
    sender=nasty,
    others=nasty,
    body=nasty,
    eight_bit=st.booleans(),
)
def test_a_reply_to_hostile_mail_builds_a_message_that_parses_back(
    from_name, subject, message_id, references, sender, others, body, eight_bit
):
    """Received headers may hold anything: encoded words hiding controls, raw 8-bit bytes, broken ids."""

    def field(value: str) -> bytes:
        value = value.encode("utf-8", "surrogatepass")  # lone surrogates: invalid UTF-8, as broken mail has
        if eight_bit:  # raw bytes, as broken mailers write them (only CR and LF would end the header)
            return re.sub(rb"[\r\n]", b" ", value)
        return b"=?utf-8?b?" + base64.b64encode(value) + b"?="

    raw = b"\r\n".join(
        [
            b"From: " + field(from_name) + b" <sender@example.net>",
            b"To: " + field(others) + b" <alice@example.org>, " + field(sender) + b" <carol@example.org>",
            b"Cc: " + field(others) + b" <dan@example.org>",
            b"Subject: " + field(subject),
            b"Message-ID: <parent@example.net>" + field(message_id),
            b"References: " + field(references) + b" <root@example.net>",
            b"Content-Type: text/plain; charset=utf-8",
            b"",
            body.encode("utf-8", "surrogatepass"),
        ]
    )
    original = compose.parse_original(raw, dt.datetime(2026, 1, 1, tzinfo=UTC))
    in_reply_to, refs = compose.threading_headers(original)
    assert in_reply_to == "<parent@example.net>" and refs.split()[-1] == "<parent@example.net>"
    for reply_all in (False, True):
        to, cc = compose.reply_recipients(original, {"alice@example.org"}, reply_all=reply_all)
        assert {m.address for m in to + cc} <= {"sender@example.net", "carol@example.org", "dan@example.org"}
        if not eight_bit:  # encoded words cannot hide the address from the parser
            assert [m.address for m in to] == ["sender@example.net"]
        for subject_line, body_text in (
            (compose.reply_subject(original.subject), compose.reply_body(original, "--\nme")),
            (compose.forward_subject(original.subject), compose.forward_body(original)),
        ):
            fields = {"subject": subject_line, "body": body_text, "in_reply_to": in_reply_to, "references": refs}
            assert all(text.storable(value) == value for value in fields.values())  # a database can hold the draft
            try:
                draft = compose.validate(
                    from_name="Alice",
                    from_email="alice@example.org",
                    to=compose.format_mailboxes(to),
                    cc=compose.format_mailboxes(cc),
                    bcc="",
                    **fields,
                )
            except ComposeError as exc:  # raw bytes can break the From field so that no address is left
                assert (exc.field, to, cc) == ("to", [], [])
                continue
            check_message(build(draft), draft)


# --- Through the web, the stored draft and the send task ----------------------------------------------


def expected_draft(row: OutgoingMessage) -> compose.Draft:
    return send.draft_of(row, SmtpSettings.objects.get(account=row.account))


@pytest.mark.django_db
def test_the_compose_page_answers_every_input_with_an_error_or_a_normalised_message(
    alice, alice_client, smtp_account, settings
):
    settings.WEBPOP_SEND_RATE_PER_HOUR = 10**6
    account = smtp_account(from_name="Alice\u2028Example\x0b")  # saved by a version that let it through
    url = reverse("outgoing:compose")

    @WEB_PROFILE
    @given(
        subject=web_nasty,
        to=web_recipients,
        cc=web_recipients,
        bcc=web_recipients,
        body=web_nasty,
        file_name=web_file_names,
        content_type=web_nasty,
        action=st.sampled_from(["send", "save", "autosave"]),
    )
    def post(subject, to, cc, bcc, body, file_name, content_type, action):
        before = set(OutgoingMessage.objects.values_list("id", flat=True))
        upload = SimpleUploadedFile(file_name, b"data", content_type=content_type or "text/plain")
        data = {
            "account": account.id,
            "to": address_field(to) or "fallback@example.net",
            "cc": address_field(cc),
            "bcc": address_field(bcc),
            "subject": subject,
            "body": body,
            "attachments": [upload],
            "action": action,
        }
        response = alice_client.post(url, data)  # the test client raises what a 500 would hide
        event(f"{action}: {response.status_code}")
        if response.status_code == 400:  # a clear form error, shown where it belongs
            errors = response.json()["errors"] if action == "autosave" else response.context["form"].errors
            assert errors
            if action != "autosave":
                assert 'class="error" role="alert"' in response.content.decode()
            return
        assert response.status_code == (200 if action == "autosave" else 302)
        [row] = OutgoingMessage.objects.exclude(id__in=before)
        assert row.subject == text.one_line(subject)  # kept as it will be sent
        for attachment in row.attachments.all():  # none when Django's upload parsing left no file name
            assert attachment.filename == compose.file_name(attachment.filename)  # as it will be sent
            assert attachment.content_type == compose.media_type(upload.content_type)
        if action == "send":
            assert row.state == OutgoingState.QUEUED
            check_message(bytes(row.raw), expected_draft(row))
        else:
            assert row.state == OutgoingState.DRAFT

    post()


# A draft saved before subjects and names were normalised: every kind of line break and control.
OLD_VALUES = [*LINE_BREAKS, "\x00", "\x01", "\x7f", "\x9f", "\t", "\u200b\u200d", "\ud800"]


@pytest.mark.django_db
@pytest.mark.parametrize("odd", OLD_VALUES, ids=[f"U+{ord(c[0]):04X}" for c in OLD_VALUES])
def test_a_draft_saved_with_odd_characters_is_sent_by_the_task_normalised(
    alice, smtp_account, smtp_server, send_enqueued, django_capture_on_commit_callbacks, odd
):
    account = smtp_account()
    storable = odd.replace("\x00", "").replace("\ud800", "\ufffd")  # what a database could have kept
    SmtpSettings.objects.filter(account=account).update(from_name=f"Alice{storable}Example")
    row = OutgoingMessage.objects.create(
        owner=alice,
        account=account,
        to="Bob <bob@example.net>",
        subject=f"Hello{storable}there",
        body=f"one{storable}two\r\n",
        in_reply_to=f"<parent@example.net>{storable}<junk{storable}@x>",
        references=f"<root@example.net> <mid{storable}@x> <parent@example.net>",
    )
    with django_capture_on_commit_callbacks(execute=True):
        outgoing_actions.queue(alice, row.id, delay=0)
    assert send.deliver(row.id) is send.Outcome.SENT
    [got] = smtp_server.received
    draft = expected_draft(row)
    assert draft.subject == text.one_line(f"Hello{storable}there")
    check_message(got.data, draft)
    kept = "<mid@x> " if not storable else ""  # only an id left well-formed is kept
    assert header(got.data, "References") == f"<root@example.net> {kept}<parent@example.net>"
    row.refresh_from_db()
    assert row.state == OutgoingState.SENT and row.sent_message.subject == draft.subject


HOSTILE = b"\r\n".join(
    [
        b"From: =?utf-8?b?" + base64.b64encode('Müller, "Hans"\u2028\x0b<x@evil>'.encode()) + b"?= <hans@example.net>",
        b"Reply-To: Ev\x01il \x1c<hans@example.net>",
        b"To: alice@example.org, =?utf-8?q?Jo=0Ahn?= <john@example.net>, \x85bad\xff <not an address>",
        b"Cc: \xc3\x28 broken <carol@example.net>",
        b"Subject: =?utf-8?q?Re=3A_Hi=E2=80=A8there=0B=1Cnow=00?=",
        b"Message-ID: <a\x01b@x> <ok@example.net>",
        b"References: <\xc3\xbc@x> <first@example.net>\x0b<second@example.net> <br\nace@x>",
        b"Date: Thu, 26 Nov 2026 09:00:00 +0000",
        b"Content-Type: text/plain; charset=utf-8",
        b"",
        b"Body with a NUL \x00, a form feed \x0c and a line separator \xe2\x80\xa8.",
        b"",
    ]
)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["reply", "reply_all", "forward"])
def test_replying_to_hostile_mail_through_the_web_sends_a_normalised_message(
    alice, alice_client, smtp_account, smtp_server, send_enqueued, django_capture_on_commit_callbacks, kind
):
    account = smtp_account(signature="Alice\x0b\u2028Example\r\n\x85sent from webpop\x1c")
    # Sent at once, then checked; in plain text, which carries every character the signature has (HTML cannot).
    Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 0, "compose_format": "plain"})
    message = store_message(account, HOSTILE, "hostile-1")
    response = alice_client.post(reverse("outgoing:reply", args=[message.id]), {"kind": kind})
    assert response.status_code == 302
    row = OutgoingMessage.objects.get(owner=alice)
    assert "\x00" not in row.body and "\u2028" not in row.subject and "\x0b" not in row.subject
    assert "-- \nAlice\x0b\u2028Example\n\x85sent from webpop\x1c\n" in row.body  # the body keeps what it can carry
    assert row.in_reply_to == ("" if kind == "forward" else "<ok@example.net>")
    if kind != "forward":
        assert compose.parse_recipients(row.to, "to")[0].address == "hans@example.net"
    else:
        row.to = "bob@example.net"
        row.save(update_fields=["to"])
    form = {"account": account.id, "to": row.to, "cc": row.cc, "bcc": "", "subject": row.subject, "body": row.body}
    with django_capture_on_commit_callbacks(execute=True):
        sent = alice_client.post(reverse("outgoing:edit", args=[row.id]), {**form, "action": "send"})
    assert sent.status_code == 302
    assert send.deliver(row.id) is send.Outcome.SENT
    [got] = smtp_server.received
    row.refresh_from_db()
    check_message(got.data, expected_draft(row))
