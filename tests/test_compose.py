"""outgoing/compose.py: addresses, header injection, subjects, quoting, reply recipients, the MIME bytes."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re

import pytest

from mailbox import mime
from outgoing import compose
from outgoing.compose import ComposeError, Mailbox, Original

UTC = dt.UTC


def draft(**overrides) -> compose.Draft:
    fields = {
        "from_name": "Alice Example",
        "from_email": "alice@example.org",
        "to": "Bob <bob@example.net>",
        "cc": "",
        "bcc": "",
        "subject": "Hello",
        "body": "Hi Bob.\n",
    }
    fields.update(overrides)
    return compose.validate(**fields)


@pytest.mark.parametrize(
    "field,value",
    [
        ("to", "bob@example.net\r\nBcc: victim@example.com"),
        ("cc", "carol@example.net\nBcc: victim@example.com"),
        ("bcc", "dan@example.net\r\n"),
        ("to", "Bob\u2028Smith <bob@example.net>"),
        ("cc", "carol@example.net\x0b"),
        ("bcc", "\x1cdan@example.net"),
        ("to", "bob@exa\x00mple.net"),
        ("to", '"b\x01ob"@example.net'),  # a quoted local part may hold controls for Django's validator
        ("from_email", "alice@example.org\x85"),
    ],
)
def test_line_breaks_and_controls_in_address_fields_are_refused(field, value):
    with pytest.raises(ComposeError, match="Line breaks and control characters") as caught:
        draft(**{field: value})
    assert caught.value.field == field


def test_a_tab_in_an_address_field_is_white_space():
    assert draft(to="Bob\t<bob@example.net>").to == [Mailbox("Bob", "bob@example.net")]


def built(**overrides) -> email.message.EmailMessage:
    raw = compose.build(draft(**overrides), message_id="<x@example.org>", date=dt.datetime(2026, 1, 2, tzinfo=UTC))
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.mark.parametrize(
    "breaker", ["\r\n", "\n", "\r", "\x00", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
)
def test_free_text_header_fields_become_one_line_and_inject_nothing(breaker):
    message = built(
        subject=f"Hello{breaker}Bcc: victim@example.com",
        from_name=f"Alice{breaker}Bcc: victim@example.com",
        attachments=[(f"a.txt{breaker}Bcc: victim@example.com", "text/plain", b"x")],
    )
    assert message["Subject"] == "Hello Bcc: victim@example.com"
    assert message["From"].addresses[0].display_name == "Alice Bcc: victim@example.com"
    assert next(message.iter_attachments()).get_filename() == "a.txt Bcc: victim@example.com"
    assert message["Bcc"] is None and message["To"] == "Bob <bob@example.net>"


def test_message_ids_taken_from_received_mail_keep_only_well_formed_ids():
    message = built(
        in_reply_to="<a@b>\r\nBcc: victim@example.com",
        references="<a@b>\nBcc: victim@example.com <c\x01d@e> <ü@x> <f@g>",
    )
    assert message["In-Reply-To"] == "<a@b>"
    assert message["References"] == "<a@b> <f@g>"
    assert message["Bcc"] is None


def test_recipients_are_parsed_validated_and_deduplicated():
    got = compose.parse_recipients('"Doe, Jane" <jane@example.net>, bob@example.net, BOB@example.net', "to")
    assert got == [Mailbox("Doe, Jane", "jane@example.net"), Mailbox("", "bob@example.net")]
    with pytest.raises(ComposeError, match="not a valid"):
        compose.parse_recipients("bob@example.net, not an address", "to")
    with pytest.raises(ComposeError, match="groups"):
        compose.parse_recipients("friends: a@example.net, b@example.net;", "to")
    # International domains go out as IDNA; a non-ASCII local part would need SMTPUTF8, which is not used.
    assert compose.parse_recipients("info@bücher.example", "to")[0].address == "info@xn--bcher-kva.example"


def test_a_message_needs_a_recipient_and_has_a_recipient_limit():
    with pytest.raises(ComposeError, match="at least one"):
        draft(to="")
    with pytest.raises(ComposeError, match="At most 3"):
        compose.validate(
            from_name="",
            from_email="alice@example.org",
            to="a@example.net, b@example.net",
            cc="c@example.net",
            bcc="d@example.net",
            subject="",
            body="",
            max_recipients=3,
        )


@pytest.mark.parametrize(
    "subject,expected",
    [
        ("Hello", "Re: Hello"),
        ("Re: Hello", "Re: Hello"),
        ("RE: re: Re:Hello", "Re: Hello"),
        ("Re[2]: Hello", "Re: Hello"),
        ("AW: Hallo", "Re: Hallo"),
        ("Fwd: Hello", "Re: Fwd: Hello"),
        ("", "Re:"),
    ],
)
def test_reply_subject_has_exactly_one_re(subject, expected):
    assert compose.reply_subject(subject) == expected


@pytest.mark.parametrize(
    "subject,expected",
    [
        ("Hello", "Fwd: Hello"),
        ("FW: Hello", "Fwd: Hello"),
        ("Fwd: Fwd: Hello", "Fwd: Hello"),
        ("Re: Hi", "Fwd: Re: Hi"),
    ],
)
def test_forward_subject_has_exactly_one_fwd(subject, expected):
    assert compose.forward_subject(subject) == expected


def test_quote_prefixes_every_line_and_requotes_quoted_lines_tightly():
    assert compose.quote("one\r\n\r\n> earlier\ntwo\n") == "> one\n>\n>> earlier\n> two"


def _original(**overrides) -> Original:
    fields = {
        "sender": [Mailbox("Carol", "carol@example.net")],
        "to": [Mailbox("Alice", "alice@example.org"), Mailbox("Dan", "dan@example.net")],
        "cc": [Mailbox("", "ERIN@example.net"), Mailbox("", "alice.work@example.com")],
        "subject": "Plans",
        "message_id": "<Orig.1@example.net>",
        "references": ["<Root@example.net>", "<Mid@example.net>"],
        "date": dt.datetime(2026, 11, 20, 14, 5, tzinfo=UTC),
        "text": "Shall we?\n> older\n",
        "from_text": "Carol <carol@example.net>",
    }
    fields.update(overrides)
    return Original(**fields)


OWN = {"alice@example.org", "alice.work@example.com"}


def test_reply_goes_to_the_sender_only():
    to, cc = compose.reply_recipients(_original(), OWN, reply_all=False)
    assert [m.address for m in to] == ["carol@example.net"]
    assert cc == []


def test_reply_prefers_reply_to():
    original = _original(reply_to=[Mailbox("List", "list@example.net")])
    to, _cc = compose.reply_recipients(original, OWN, reply_all=False)
    assert [m.address for m in to] == ["list@example.net"]


def test_reply_all_adds_everyone_else_never_yourself_and_no_duplicates():
    original = _original(cc=[Mailbox("", "ERIN@example.net"), Mailbox("", "alice.work@example.com"),
                             Mailbox("Carol again", "CAROL@example.net")])  # fmt: skip
    to, cc = compose.reply_recipients(original, OWN, reply_all=True)
    assert [m.address for m in to] == ["carol@example.net"]
    assert [m.address for m in cc] == ["dan@example.net", "ERIN@example.net"]


def test_reply_to_your_own_message_goes_to_its_recipients():
    original = _original(sender=[Mailbox("Alice", "Alice@Example.org")])
    to, cc = compose.reply_recipients(original, OWN, reply_all=True)
    assert [m.address for m in to] == ["dan@example.net"]
    assert [m.address for m in cc] == ["ERIN@example.net"]


def test_threading_headers_chain_references_and_keep_their_case():
    assert compose.threading_headers(_original()) == (
        "<Orig.1@example.net>",
        "<Root@example.net> <Mid@example.net> <Orig.1@example.net>",
    )
    many = _original(references=[f"<r{i}@x>" for i in range(40)])
    _parent, references = compose.threading_headers(many)
    ids = references.split()
    assert len(ids) == compose.MAX_REFERENCES
    assert ids[0] == "<r0@x>" and ids[-1] == "<Orig.1@example.net>"


def test_reply_body_quotes_under_an_attribution_after_the_signature():
    body = compose.reply_body(_original(), signature="Alice\nexample.org")
    assert body.startswith(
        "\n\n-- \nAlice\nexample.org\n\nOn Fri, 20 Nov 2026 at 14:05, Carol <carol@example.net> wrote:\n"
    )
    assert body.endswith("> Shall we?\n>> older\n")


def test_built_message_is_7bit_mime_with_rfc2047_headers_and_base64_attachments():
    d = draft(
        from_name="Zoë Ünicode",
        to="Jürgen <j@example.net>",
        cc="plain@example.net",
        bcc="hidden@example.net",
        subject="Grüße aus Köln – ça va?",
        body="Hallo Jürgen,\nein Gruß.\n",
        in_reply_to="<Parent@example.net>",
        references="<Root@example.net> <Parent@example.net>",
        attachments=[("bericht ü.pdf", "application/pdf", b"%PDF-1.4\x00\xff binary"), ("a.txt", "text/plain", b"hi")],
    )
    raw = compose.build(
        d,
        message_id="<id1@example.org>",
        date=dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    )
    assert raw.isascii()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert re.fullmatch(r"From: =\?utf-8\?[bq]\?[^?\s]+\?= <alice@example.org>", head.splitlines()[0])
    assert "Subject: =?utf-8?" in head
    assert "Date: Thu, 26 Nov 2026 10:00:00 +0100" in head
    assert "Message-ID: <id1@example.org>" in head
    assert "In-Reply-To: <Parent@example.net>" in head
    assert "References: <Root@example.net> <Parent@example.net>" in head
    assert "MIME-Version: 1.0" in head
    assert "Bcc" not in head and "hidden@example.net" not in raw.decode()

    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Grüße aus Köln – ça va?"
    assert parsed["To"].addresses[0].display_name == "Jürgen"
    assert parsed["Cc"] == "plain@example.net"
    body = parsed.get_body(("plain",))
    assert body.get_content_charset() == "utf-8"
    assert body["Content-Transfer-Encoding"] in {"quoted-printable", "base64"}
    assert body.get_content() == "Hallo Jürgen,\r\nein Gruß.\r\n"  # canonical text: CRLF line ends
    attachments = list(parsed.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["bericht ü.pdf", "a.txt"]
    assert all(a["Content-Transfer-Encoding"] == "base64" for a in attachments)
    assert attachments[0].get_content() == b"%PDF-1.4\x00\xff binary"
    assert attachments[1].get_content_type() == "text/plain"


def test_sent_copy_keeps_bcc_in_front_of_the_sent_bytes():
    raw = b"From: a@example.org\r\n\r\nbody\r\n"
    copy = compose.with_bcc(raw, [Mailbox("Hidden", "hidden@example.net")])
    assert copy == b"Bcc: Hidden <hidden@example.net>\r\n" + raw
    assert compose.with_bcc(raw, []) == raw


def test_message_ids_are_random_in_the_senders_domain():
    first, second = compose.new_message_id("alice@example.org"), compose.new_message_id("alice@example.org")
    assert first != second
    assert first.startswith("<") and first.endswith("@example.org>")


def test_forwarded_messages_stay_messages_and_odd_types_become_files():
    inner = b"From: x@example.net\r\nSubject: inner\r\n\r\nhello\r\n"
    d = draft(
        attachments=[
            ("fw.eml", "message/rfc822", inner),
            ("8bit.eml", "message/rfc822", "Subject: ü\r\n\r\nü\r\n".encode()),
            ("status", "message/delivery-status", b"Status: 5.0.0\r\n"),
            ("weird", "multipart/mixed", b"x"),
        ]
    )
    parsed = email.message_from_bytes(compose.build(d, message_id="<x@y>", date=dt.datetime.now(UTC)))
    parts = [p for p in parsed.walk() if p.get_filename()]
    assert [(p.get_filename(), p.get_content_type(), p["Content-Transfer-Encoding"]) for p in parts] == [
        ("fw.eml", "message/rfc822", "7bit"),
        ("8bit.eml", "application/octet-stream", "base64"),
        ("status", "application/octet-stream", "base64"),
        ("weird", "application/octet-stream", "base64"),
    ]
    assert parts[0].get_payload(0)["Subject"] == "inner"
    assert parts[1].get_payload(decode=True) == "Subject: ü\r\n\r\nü\r\n".encode()


def test_long_non_ascii_subjects_and_address_lists_keep_every_space_and_recipient():
    """Python's own folder loses the space at a split between encoded words and can encode a list's comma."""
    subject = "команда дела отчёт неделя команда отчёт как бюджет команда неделя как дела неделя проект отчёт бюджет"
    message = built(subject=subject, cc='carol@example.org, "000¡¡" <dan@bücher.example>, bob@example.net')
    assert message["Subject"] == subject
    assert [a.addr_spec for a in message["Cc"].addresses] == [
        "carol@example.org",
        "dan@xn--bcher-kva.example",
        "bob@example.net",
    ]
    raw = compose.build(draft(subject=subject), message_id="<x@example.org>", date=dt.datetime(2026, 1, 2, tzinfo=UTC))
    assert mime.parse_bytes(raw).subject == subject
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
